#!/usr/bin/env bash
# scripts/llmc_memory.sh L NH C Vp maxT B T: the GPU memory llm.c's
# train_gpt2.cu allocates for a GPT-2 model (L layers, NH heads, C channels,
# padded vocabulary Vp, maxT positions) at batch B x T, with its defaults:
# bf16, cuDNN attention, recompute 1 (GELU recomputed), fp32 master weights.
# Prints GiB with two decimals. From its allocation list (the figures carry
# over, not the code):
#   bf16 activations: encoded, lnf, scratch_btc (B,T,C); fch_gelu and
#     scratch_bt4c (B,T,4C); per layer ln1, atty, residual2, ln2, residual3
#     (B,T,C), fch (B,T,4C), qkvr (B,T,3C); output (B,T,max(3C, NH*T, Vp))
#   fp32: ln1, ln2 mean and rstd per layer (B,T); cuDNN's softmax stats per
#     layer (B,NH,T); lnf mean, rstd and the losses (B,T)
#   parameters and gradients bf16, AdamW m, v and master weights fp32:
#     16 bytes per parameter; the cuBLASLt workspace, 32 MiB.
# scripts/gpu_validate.sh compares the GPU trainer's memory plan with it
# (the aim: 15% lower at the same batch).
set -euo pipefail
if [ $# -ne 7 ]; then
    echo "error: usage: scripts/llmc_memory.sh L NH C Vp maxT B T" >&2
    exit 2
fi
for v in "$@"; do
    case $v in '' | *[!0-9]* | 0) echo "error: llmc_memory.sh: '$v' is not a positive integer" >&2; exit 2 ;; esac
done
awk -v L="$1" -v NH="$2" -v C="$3" -v Vp="$4" -v maxT="$5" -v B="$6" -v T="$7" 'BEGIN {
    BT = B * T
    N = Vp * C + maxT * C + L * (12 * C * C + 13 * C) + 2 * C   # parameters (wte padded to Vp)
    out = 3 * C; if (NH * T > out) out = NH * T; if (Vp > out) out = Vp
    bf16 = BT * C * (12 * L + 11) + BT * out
    fp32 = BT * (4 * L + L * NH + 3)
    printf "%.2f\n", (2 * bf16 + 4 * fp32 + 16 * N + 32 * 2^20) / 2^30
}'
