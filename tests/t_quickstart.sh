#!/usr/bin/env bash
# tests/t_quickstart.sh: the README's first command, `make quickstart`
# (scripts/quickstart.sh), shortened to 40 steps and writing to a scratch
# folder: it tokenizes Moby-Dick, trains, samples, plots the loss curve, and
# ends by saying where the checkpoint, log and plot are; the command it
# prints generates text from that checkpoint.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1
OUT=$TMP/qs
if ! QUICKSTART_STEPS=40 QUICKSTART_OUT="$OUT" bash scripts/quickstart.sh > "$TMP/qs.txt" 2>&1; then
    fail quickstart_runs "exit non-zero: $(tail -3 "$TMP/qs.txt")"
    exit 0
fi
pass quickstart_runs
# the val loss at step 0 (10.84, uniform over 50257 tokens) and at the end
vals=$(sed -n 's/^step [0-9]*\/40 | val loss \([0-9.]*\)$/\1/p' "$TMP/qs.txt" | tr '\n' ' ')
awk -v v="$vals" 'BEGIN {n = split(v, a, " "); exit !(n >= 2 && a[1] > 10.7 && a[1] < 10.9 && a[n] < a[1] - 1)}' \
    && pass "quickstart: val loss falls from ~10.8 by over 1 nat in 40 steps ($vals)" \
    || fail quickstart_val_loss "val losses '$vals'"
[ "$(head -c 8 "$OUT/loss.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] \
    && pass "quickstart: the loss curve is a PNG" || fail quickstart_png "no PNG at $OUT/loss.png"
for what in "checkpoint: $OUT/model_00000040.bin" "log:        $OUT/log.jsonl" "loss curve: $OUT/loss.png"; do
    grep -qF -- "$what" "$TMP/qs.txt" && pass "quickstart names its ${what%%:*}" \
        || fail "quickstart names its ${what%%:*}" "no line '$what'"
done
gen=$(grep -A1 '^generate from the model:' "$TMP/qs.txt" | tail -1 | sed 's/-g 100/-g 8/')
if out=$(eval "$gen" 2>&1) && printf '%s' "$out" | grep -q 'Call me Ishmael.'; then
    pass "quickstart: its generate command continues the prompt"
else
    fail quickstart_generate "'$gen': $(printf '%s' "$out" | tail -3)"
fi
# a second run in its own folder (marked .quickstart) starts afresh; a
# folder holding another run's checkpoints is refused, and they stay
check "quickstart runs again in its own folder" env QUICKSTART_STEPS=2 QUICKSTART_OUT="$OUT" bash scripts/quickstart.sh
mkdir -p "$TMP/other"; cp "$OUT/model_00000002.bin" "$TMP/other/model_00001000.bin"
expect_error "quickstart refuses a folder with another run's checkpoints" "holds checkpoints of another run" \
    env QUICKSTART_STEPS=2 QUICKSTART_OUT="$TMP/other" bash scripts/quickstart.sh
check "... and leaves them there" test -f "$TMP/other/model_00001000.bin"
expect_error "QUICKSTART_STEPS=abc is refused up front" "QUICKSTART_STEPS=abc: want a whole number" \
    env QUICKSTART_STEPS=abc bash scripts/quickstart.sh
