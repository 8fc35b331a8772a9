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
