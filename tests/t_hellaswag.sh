#!/usr/bin/env bash
# tests/t_hellaswag.sh: HellaSwag accuracy during training (-hs, llmc/hellaswag.h)
# in both trainers, on a file whose right answers are the training data's own
# continuations (tests/make_hellaswag.py): a fresh model scores chance, one
# that memorized the data scores 1 (and 0 when the file names wrong answers),
# on the CPU, the emulated GPU, and several ranks; bad files and flags are
# refused with one line.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
make -s train_gpt2 build/emu/plain/train_gpt2cu >/dev/null 2>&1 || { fail hellaswag_build "make failed"; exit 0; }
PY=/usr/bin/python3
GPU=build/emu/plain/train_gpt2cu
$PY tests/make_model.py "$TMP/m.bin" 2 2 64 512 64 5
$PY tests/make_shard.py "$TMP/tr_000.bin" 20000 1 512
# 8 examples: context 10 tokens, completions 5 (rows of 14 tokens), from rows of T=16
$PY tests/make_hellaswag.py "$TMP/tr_000.bin" "$TMP/hs.bin" 8 16 10 5 3
$PY tests/make_hellaswag.py "$TMP/tr_000.bin" "$TMP/wrong.bin" 8 16 10 5 3 --wrong-labels
DATA=(-i "$TMP/tr_*.bin" -j "" -b 8 -t 16 -g 0 -tz "")
acc() { sed -n "s/^step $2\/[0-9]* | hellaswag \([0-9.]*\) (\([0-9]*\) examples)$/\1 \2/p" "$1"; }

# memorize the first batch (its rows hold the examples' contexts and answers)
./train_gpt2 -e "$TMP/m.bin" "${DATA[@]}" -x 60 -a 1 -sh 0 -l 3e-3 -v 30 -hs "$TMP/hs.bin" -o "$TMP/out" -n 60 \
    > "$TMP/train.txt" 2>&1 || fail hellaswag_train "$(tail -3 "$TMP/train.txt")"
[ "$(acc "$TMP/train.txt" 0)" = "0.2500 8" ] && pass "a fresh model scores chance on HellaSwag (2 of 8)" \
    || fail "a fresh model scores chance" "step 0: '$(acc "$TMP/train.txt" 0)'"
[ "$(acc "$TMP/train.txt" 60)" = "1.0000 8" ] && pass "after memorizing the data it scores 8 of 8" \
    || fail "after memorizing the data it scores 8 of 8" "step 60: '$(acc "$TMP/train.txt" 60)'"
check hellaswag_in_the_log grep -q '^{"step":60,"hellaswag_acc":1.000000}$' "$TMP/out/log.jsonl"

# the memorized model, evaluated: right answers 1, wrong ones 0, on every trainer and rank count
EVAL=(-e "$TMP/out/model_00000060.bin" "${DATA[@]}" -x 1 -l 0)
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1
mpi() { local n=$1; shift; timeout 120 mpirun --oversubscribe -np "$n" "$@"; }
for run in "CPU|./train_gpt2" "emulated GPU|$GPU" "CPU, B=6|./train_gpt2 -b 6" "CPU, 3 ranks, B=4|mpi 3 ./train_gpt2 -b 4" \
           "emulated GPU, 2 ranks, ZeRO-3|mpi 2 $GPU -z 3"; do
    name=${run%%|*}; read -r -a cmd <<< "${run#*|}"
    for f in hs wrong; do
        want=$([ $f = hs ] && echo "1.0000 8" || echo "0.0000 8")
        "${cmd[@]}" "${EVAL[@]}" -hs "$TMP/$f.bin" > "$TMP/eval.txt" 2>&1
        if [ "$(acc "$TMP/eval.txt" 1)" = "$want" ]; then pass "HellaSwag on the memorized model ($name, $f answers): $want"
        else fail "HellaSwag on the memorized model ($name, $f answers)" "got '$(acc "$TMP/eval.txt" 1)' $(grep -m1 error "$TMP/eval.txt")"; fi
    done
done

# bad files and flags
bad() {  # NAME WANT PYTHON-EDIT: the file edited in place by PYTHON-EDIT (d: its bytes) must be refused
    cp "$TMP/hs.bin" "$TMP/bad.bin"
    $PY -c "import sys; d = bytearray(open(sys.argv[1], 'rb').read()); $3; open(sys.argv[1], 'wb').write(d)" "$TMP/bad.bin"
    expect_error "$1" "$2" ./train_gpt2 "${EVAL[@]}" -hs "$TMP/bad.bin"
}
bad hellaswag_bad_magic "is not a HellaSwag file" "d[0] ^= 1"
bad hellaswag_truncated "example 7 has a bad size" "d = d[:-7 * 2]"
bad hellaswag_bad_label "want 4 and 0..3" "d[1024 + 6:1024 + 8] = (7).to_bytes(2, 'little')"
bad hellaswag_count_past_the_file "hold at most" "d[8:12] = (2**31 - 1).to_bytes(4, 'little')"
bad hellaswag_token_outside_vocab "outside the vocabulary" "d[1024 + 12:1024 + 14] = (600).to_bytes(2, 'little')"
expect_error hellaswag_needs_b4 "it needs -b 4 or more" ./train_gpt2 "${EVAL[@]}" -b 2 -hs "$TMP/hs.bin"
expect_error hellaswag_nothing_fits "none of the 8 examples" ./train_gpt2 "${EVAL[@]}" -t 8 -hs "$TMP/hs.bin"
expect_error hellaswag_missing_file "nosuch.bin" ./train_gpt2 "${EVAL[@]}" -hs "$TMP/nosuch.bin"

# dev/data/hellaswag.py: HellaSwag's jsonl to that file, tokenized by
# ./tokenize as llm.c tokenizes it (context as is, each ending after a space)
make -s vocab tokenize >/dev/null 2>&1 || fail hellaswag_tokenize_build "make vocab tokenize failed"
cat > "$TMP/hs.jsonl" <<'JSONL'
{"ind": 24, "ctx": "A man is sitting on a roof. he", "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "label": 3}
{"ctx": "Caf\u00e9 \"quotes\" and\nnewlines: she", "endings": ["smiles.", "runs away.", "says \u201chi\u201d.", "sits."], "label": 0}
JSONL
if $PY dev/data/hellaswag.py "$TMP/hs.jsonl" "$TMP/real.bin" > "$TMP/conv.txt" 2>&1 &&
    $PY - "$TMP/hs.jsonl" "$TMP/real.bin" > "$TMP/conv_check.txt" 2>&1 <<'PY'
import json, subprocess, sys
import numpy as np
exs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
d = np.fromfile(sys.argv[2], dtype=np.uint16, offset=1024).tolist()
ids = lambda s: [int(x) for x in subprocess.run(["./tokenize", "--ids"], input=s.encode(), capture_output=True).stdout.split()]
at = 0
for i, ex in enumerate(exs):
    assert d[at] == 65535 and d[at + 2] == i and d[at + 3] == ex["label"] and d[at + 4] == 4, d[at:at + 5]
    k = at + 5
    for s in [ex["ctx"]] + [" " + e for e in ex["endings"]]:
        want = ids(s)
        assert d[k] == len(want) and d[k + 1 : k + 1 + len(want)] == want, (s, d[k : k + 1 + len(want)], want)
        k += 1 + len(want)
    assert 2 * (k - at) == d[at + 1]
    at = k
assert at == len(d)
PY
then pass "dev/data/hellaswag.py: contexts and ' '-prefixed endings as ./tokenize encodes them, labels, sizes"
else fail "dev/data/hellaswag.py writes llm.c's format" "$(cat "$TMP/conv.txt" "$TMP/conv_check.txt" | tail -5)"; fi
$PY tests/make_model.py "$TMP/v.bin" 2 2 64 50257 64 5
if ./train_gpt2 -e "$TMP/v.bin" -i "$TMP/tr_*.bin" -j "" -b 4 -t 32 -x 1 -l 0 -g 0 -tz "" -hs "$TMP/real.bin" \
        > "$TMP/real.txt" 2>&1 && grep -q '^step 1/1 | hellaswag [0-9.]* (2 examples)$' "$TMP/real.txt"; then
    pass "the trainer scores the converted file (2 examples)"
else fail "the trainer scores the converted file" "$(grep -m2 'hellaswag\|error' "$TMP/real.txt")"; fi
printf '{"ctx": "x", "endings": ["a", "b", "c"], "label": 0}\n' > "$TMP/bad.jsonl"
expect_error hellaswag_converter_refuses_3_endings "bad.jsonl:1: want a non-empty ctx, 4 non-empty endings" \
    $PY dev/data/hellaswag.py "$TMP/bad.jsonl" "$TMP/x.bin"
# bad input lines (after a good line 1), named by line; no traceback
GOOD='{"ctx": "a b", "endings": ["c", "d", "e", "f"], "label": 0}'
bad_line() {  # NAME WANT LINE2 (printf format: \xff is a raw byte)
    printf "%s\n$3\n" "$GOOD" > "$TMP/bad2.jsonl"
    expect_error "hellaswag.py: $1" "$2" $PY dev/data/hellaswag.py "$TMP/bad2.jsonl" "$TMP/x.bin"
}
bad_line "endings that are not strings" "bad2.jsonl:2: want" '{"ctx": "a b", "endings": [1, 2, 3, 4], "label": 0}'
bad_line "a line that is not UTF-8" "bad2.jsonl:2: not UTF-8" '{"ctx": "a \xff b", "endings": ["c", "d", "e", "f"], "label": 0}'
bad_line "a lone surrogate" "bad2.jsonl:2: want" '{"ctx": "a \\ud800 b", "endings": ["c", "d", "e", "f"], "label": 0}'
bad_line "label true (a bool, not 1)" "bad2.jsonl:2: want" '{"ctx": "a b", "endings": ["c", "d", "e", "f"], "label": true}'
bad_line "JSON nested past the recursion limit" "bad2.jsonl:2: not a HellaSwag example" "$(printf '[%.0s' $(seq 100000))"
$PY -c "import sys; sys.stdout.write((sys.argv[1] + '\n') * 65537)" "$GOOD" > "$TMP/many.jsonl"
expect_error "hellaswag.py: more examples than the 16-bit index holds" "many.jsonl:65537: more than 65536" \
    $PY dev/data/hellaswag.py "$TMP/many.jsonl" "$TMP/x.bin"
mkfifo "$TMP/hs_fifo"
expect_error "hellaswag.py: a FIFO input" "not a regular file" $PY dev/data/hellaswag.py "$TMP/hs_fifo" "$TMP/x.bin"
printf '%s\n' "$GOOD" > "$TMP/one.jsonl"
expect_error "hellaswag.py: --tokenize missing" "--tokenize" $PY dev/data/hellaswag.py "$TMP/one.jsonl" "$TMP/x.bin" --tokenize "$TMP/nonexist"
expect_error "hellaswag.py: --tokenize a folder" "--tokenize" $PY dev/data/hellaswag.py "$TMP/one.jsonl" "$TMP/x.bin" --tokenize "$TMP"
expect_error "hellaswag.py: OUT in a missing folder" "cannot write" $PY dev/data/hellaswag.py "$TMP/one.jsonl" "$TMP/nodir/x.bin"
mkdir -p "$TMP/out_dir"
expect_error "hellaswag.py: OUT a folder" "cannot write" $PY dev/data/hellaswag.py "$TMP/one.jsonl" "$TMP/out_dir"
check "hellaswag.py: no OUT.tmp left behind" test ! -e "$TMP/out_dir.tmp"
# a raw U+2028 and U+0085 inside JSON strings: legal JSON, no line breaks
printf '{"ctx": "a\xe2\x80\xa8b", "endings": ["c", "d\xc2\x85e", "e", "f"], "label": 1}\n' > "$TMP/u2028.jsonl"
check "hellaswag.py: U+2028 and U+0085 inside strings do not end the line" \
    $PY dev/data/hellaswag.py "$TMP/u2028.jsonl" "$TMP/u2028.bin"
