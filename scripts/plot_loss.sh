#!/usr/bin/env bash
# scripts/plot_loss.sh LOG.jsonl OUT.png [TITLE]: the loss curve of a run
# (train loss per step, val loss where measured) as a PNG, with gnuplot.
set -euo pipefail
[ $# -ge 2 ] || { echo "error: usage: plot_loss.sh LOG.jsonl OUT.png [TITLE]" >&2; exit 1; }
log=$1; out=$2; title=${3:-training loss}
[ -f "$log" ] && [ -r "$log" ] || { echo "error: no readable log file '$log'" >&2; exit 1; }
# (gnuplot, failing to open the output, writes the PNG to stdout instead)
dir=$(dirname -- "$out")
[ -n "$out" ] && [ -d "$dir" ] && [ -w "$dir" ] || { echo "error: cannot write '$out': no writable folder '$dir'" >&2; exit 1; }
[ ! -e "$out" ] || { [ -f "$out" ] && [ -w "$out" ]; } || { echo "error: cannot write '$out': not a writable file" >&2; exit 1; }
# a gnuplot string: single-quoted, a quote inside doubled
gq() { printf "'%s'" "${1//\'/\'\'}"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# JSON lines -> two columns per series
sed -n 's/.*"step":\([0-9]*\),"train_loss":\([-0-9.eE+]*\).*/\1 \2/p' "$log" > "$tmp/train.dat"
sed -n 's/.*"step":\([0-9]*\),"val_loss":\([-0-9.eE+]*\).*/\1 \2/p' "$log" > "$tmp/val.dat"
[ -s "$tmp/train.dat" ] || { echo "error: '$log' holds no train_loss lines" >&2; exit 1; }
plots="$(gq "$tmp/train.dat") using 1:2 with lines lw 1.5 lc rgb '#4477aa' title 'train'"
[ -s "$tmp/val.dat" ] && plots="$plots, $(gq "$tmp/val.dat") using 1:2 with linespoints lw 2 pt 7 ps 0.8 lc rgb '#cc3311' title 'val'"
gnuplot >/dev/null <<GP
set terminal pngcairo noenhanced size 900,540 font 'sans,11'
set output $(gq "$out")
set title $(gq "$title")
set xlabel 'step'
set ylabel 'loss (nats per token)'
set grid
set key top right
plot $plots
GP
