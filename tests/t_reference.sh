# tests/t_reference.sh: the CPU trainer against the PyTorch reference.
# train_gpt2.py writes reference files from a fixed seed (random init: GPT-2
# weights cannot be downloaded here) for a tiny model (d2) and the full 124M
# shape (d12); test_gpt2 compares logits, loss, every gradient and 10 AdamW
# steps. Then the test must fail on a deliberately wrong gradient.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
make -s test_gpt2 >/dev/null || { fail build "make test_gpt2"; exit 1; }
PY=/usr/bin/python3
REF=build/ref
for cfg in "d2 4 32" "d12 4 64"; do
    set -- $cfg
    out=$REF/$1
    if $PY train_gpt2.py reference --model "$1" --B "$2" --T "$3" --seed 1337 --no_bf16 --out "$out" > "$TMP/ref_$1.txt" 2>&1; then
        pass "reference $1 written"
    else
        fail "reference $1 written" "$(tail -3 "$TMP/ref_$1.txt")"; continue
    fi
    if ./test_gpt2 "$out" --init "$1" 1337 > "$TMP/test_$1.txt" 2>&1; then
        pass "test_gpt2 $1 (B=$2 T=$3) matches PyTorch"
    else
        fail "test_gpt2 $1 (B=$2 T=$3) matches PyTorch" "see below"
    fi
    sed 's/^/    /' "$TMP/test_$1.txt" | grep -v '     step'
done
# the comparison must catch a wrong gradient in any one tensor
for t in wpe qkvb fcprojw lnfw; do
    if ./test_gpt2 $REF/d2 --perturb $t > "$TMP/perturb.txt" 2>&1; then
        fail "perturbed grad $t is caught" "test_gpt2 passed with a wrong gradient"
    elif grep -q "^FAIL grad $t " "$TMP/perturb.txt"; then
        pass "perturbed grad $t is caught"
    else
        fail "perturbed grad $t is caught" "failed, but not on grad $t: $(grep FAIL "$TMP/perturb.txt" | head -2)"
    fi
done

# the training loop (data order, AdamW, clipping) against PyTorch's: 20 steps
# on consecutive batches of one shard from the same weights, constant LR.
# Tolerance 2e-5 on each loss: fp32 sum-order noise (~1e-6 per step) grows
# through 20 updates at lr 1e-3; observed 2e-6, against ~0.2 change per step.
$PY tests/make_shard.py "$TMP/cmp_train_000.bin" 20000 5
$PY train_gpt2.py train --init $REF/d2/model_fp32.bin --train_bin "$TMP/cmp_train_000.bin" \
    --B 4 --T 32 --steps 20 --lr 1e-3 > "$TMP/py_steps.txt" 2>/dev/null
./train_gpt2 -e $REF/d2/model_fp32.bin -i "$TMP/cmp_train_000.bin" -j "" -b 4 -t 32 -x 20 -l 1e-3 \
    -k constant -sh 0 -g 0 -tz "" -o "$TMP/c_run" > /dev/null
sed -n 's/.*"train_loss":\([0-9.]*\).*/\1/p' "$TMP/c_run/log.jsonl" > "$TMP/c_losses.txt"
awk '{print $2}' "$TMP/py_steps.txt" > "$TMP/py_losses.txt"
worst=$(paste "$TMP/c_losses.txt" "$TMP/py_losses.txt" |
        awk 'NF == 2 {d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++} END {if (n == 20) printf "%.2e", m; else print "missing"}')
if [ "$worst" != missing ] && awk -v w="$worst" 'BEGIN {exit !(w <= 2e-5)}'; then
    pass "20 training steps match PyTorch's losses (max error $worst)"
else
    fail "20 training steps match PyTorch's losses" "max error $worst"
fi

# test_gpt2's own inputs, each refused before anything is sized from it: a
# bf16 model of another shape (its tensors were read past the fp32 model's),
# an fp32 file in its place, a debug state claiming B=1024 (1.8 GB of
# activations were allocated before its size was checked), steps.txt cut,
# garbled or too long (the reading stopped there and passed), --init with a
# model file (it compared the reference with itself) or a bad seed (atoi),
# an unknown --perturb (found only after the forward and backward)
bad_ref() {  # NAME WANT FILE CMD...: a copy of the d2 reference with FILE made anew by CMD
    local name=$1 want=$2 file=$3; shift 3
    rm -rf "$TMP/bad" && cp -r $REF/d2 "$TMP/bad" && "$@" > "$TMP/bad/$file"
    expect_error "test_gpt2: $name" "$want" ./test_gpt2 "$TMP/bad"
}
bad_ref "a bf16 model of another shape" "models of different shapes" model_bf16.bin \
    $PY tests/make_model.py /dev/stdout 1 1 64 300 32 1 bf16
bad_ref "an fp32 model as the bf16 one" "not a bf16 (v5) model file" model_bf16.bin cat $REF/d2/model_fp32.bin
bad_ref "a debug state claiming B=1024" "debug state" debug_state.bin $PY -c "
import sys, numpy as np
d = open('$REF/d2/debug_state.bin', 'rb').read(); h = np.frombuffer(d[:1024], np.int32).copy(); h[2] = 1024
sys.stdout.buffer.write(h.tobytes() + d[1024:])"
bad_ref "steps.txt: junk after line 1's numbers" "line 1 is not" steps.txt sed '1s/$/ junk/' $REF/d2/steps.txt
bad_ref "steps.txt: the last line cut" "line 10 is not" steps.txt head -c -3 $REF/d2/steps.txt
bad_ref "steps.txt: 101 steps" "more than 100 steps" steps.txt awk 'BEGIN {for (i = 0; i < 101; i++) print i, 10.5, 2.5}'
for args in "--init $REF/d2/model_fp32.bin 7|not a descriptor" "--init d2 1337abc|seed '1337abc'" \
            "--init d2 -5|seed '-5'" "--init d2|needs a descriptor and a seed" "--init d2 1 --init d2 1|given twice" \
            "--perturb nosuch|no parameter tensor"; do
    expect_error "test_gpt2 ${args%%|*}" "${args#*|}" ./test_gpt2 $REF/d2 ${args%%|*}
done
expect_error "test_gpt2 --help is no folder" "usage: test_gpt2 DIR" ./test_gpt2 --help
if ./test_gpt2 $REF/d2 --init d1 1337 > "$TMP/init_d1.txt" 2>&1; then fail "test_gpt2 --init of another shape fails" "exit 0"
else check "test_gpt2 --init of another shape fails" grep -q '^FAIL init d1: another shape' "$TMP/init_d1.txt"; fi

# a reference batch longer than the model's context (T=32 against a copy of
# the d2 model cut to maxT=16: wpe's last rows dropped, no checksum; the
# bf16 file likewise) must stop test_gpt2 before the encoder reads past wpe
mkdir -p "$TMP/short_ctx"
cp $REF/d2/* "$TMP/short_ctx/"
for f in model_fp32.bin model_bf16.bin; do
    $PY - "$REF/d2/$f" "$TMP/short_ctx/$f" <<'PYEOF'
import sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
d = open(src, "rb").read()
h = np.frombuffer(d[:1024], np.int32).copy()
params = np.frombuffer(d[1024:], np.float32 if h[1] == 3 else np.uint16)
max_t, c, vp, keep = h[2], h[6], h[7], 16
wpe = vp * c  # wpe follows wte (Vp,C)
params = np.concatenate([params[:wpe + keep * c], params[wpe + max_t * c:]])
h[2], h[8], h[9] = keep, 0, 0
open(dst, "wb").write(h.tobytes() + params.tobytes())
PYEOF
done
expect_error "a reference T past the model's maxT is refused" "maximum sequence length 16" \
    ./test_gpt2 "$TMP/short_ctx"

# train_gpt2.py's own inputs and outputs (d1 with a 512-token vocabulary: cheap).
# reference: an earlier run's steps_bf16.txt (test_gpt2.cu's bf16 tolerance)
# must not outlive a --no_bf16 run, nor a failed run leave old files beside
# new ones; a diverging run stops; flags past what the C readers take
REF_PY=($PY train_gpt2.py reference --model d1 --vocab 512 --max_seq_len 16 --B 2 --T 8 --steps 2)
R=$TMP/pyref
"${REF_PY[@]}" --out "$R" > /dev/null 2>&1 && "${REF_PY[@]}" --no_bf16 --out "$R" > /dev/null 2>&1
check "reference --no_bf16 removes an earlier run's steps_bf16.txt" \
    test -s "$R/model_fp32.bin" -a -s "$R/steps.txt" -a ! -e "$R/steps_bf16.txt"
expect_error "reference: a diverging run (--lr 1e30) stops" "not finite" "${REF_PY[@]}" --steps 5 --lr 1e30 --out "$R"
check "reference: the diverged run left only its debug_state.bin (no model file, no earlier run's files)" \
    test "$(ls -A "$R")" = debug_state.bin
expect_error "reference: --out ''" "--out" "${REF_PY[@]}" --out ""
expect_error "reference: --steps past test_gpt2's 100" "--steps: 101 is out of range" "${REF_PY[@]}" --steps 101 --out "$R"
expect_error "reference: --B past debug_state.h's 1024" "--B: 1025 is out of range" "${REF_PY[@]}" --B 1025 --out "$R"
expect_error "reference: a 20-digit --B" "--B" "${REF_PY[@]}" --B 99999999999999999999 --out "$R"
expect_error "bench: a 20-digit --B" "--B" $PY train_gpt2.py bench --model d1 --B 99999999999999999999
# train: --init is checked as the C loader checks it (the checksum the C
# trainer wrote, finite weights); FIFOs are refused, not waited on forever
TRAIN_PY=($PY train_gpt2.py train --train_bin "$TMP/cmp_train_000.bin" --B 4 --T 32 --steps 1)
C_MODEL=$TMP/c_run/model_00000020.bin
check "train --init: the C trainer's checksummed checkpoint loads" "${TRAIN_PY[@]}" --init "$C_MODEL"
cp "$C_MODEL" "$TMP/corrupt.bin"
printf '\001' | dd of="$TMP/corrupt.bin" bs=1 seek=5000 conv=notrunc 2>/dev/null
expect_error "train --init: a flipped weight bit is caught by the checksum" "is corrupt" "${TRAIN_PY[@]}" --init "$TMP/corrupt.bin"
cp $REF/d2/model_fp32.bin "$TMP/nan.bin"  # no checksum (slot 8 = 0): a NaN in wte
printf '\000\000\300\177' | dd of="$TMP/nan.bin" bs=1 seek=2048 conv=notrunc 2>/dev/null
expect_error "train --init: NaN weights are refused" "NaN or inf" "${TRAIN_PY[@]}" --init "$TMP/nan.bin"
mkfifo "$TMP/fifo"
expect_error "train --init: a FIFO is refused" "--init" "${TRAIN_PY[@]}" --init "$TMP/fifo"
expect_error "train --train_bin: a FIFO is refused" "--train_bin" "${TRAIN_PY[@]}" --init "$C_MODEL" --train_bin "$TMP/fifo"
mkdir -p "$TMP/steps_dir/sub"
expect_error "train --steps_out: a folder is refused" "--steps_out" "${TRAIN_PY[@]}" --init "$C_MODEL" --steps_out "$TMP/steps_dir"
expect_error "train: a diverging run (--lr 1e30) stops" "not finite" "${TRAIN_PY[@]}" --init "$C_MODEL" --steps 5 --lr 1e30
check "write_atomically: a failed write leaves no .tmp behind" $PY -c '
import os, sys, train_gpt2
path = sys.argv[1]  # a folder: the rename fails
try:
    train_gpt2.write_atomically(path, [b"data"])
except train_gpt2.InputError:
    sys.exit(path + ".tmp is left behind" if os.path.lexists(path + ".tmp") else 0)
sys.exit("no error")' "$TMP/steps_dir"
