# tests/t_train.sh: the CPU trainer end to end on small synthetic shards:
# learning, exact resume, checkpoint files, and rejection of bad input.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
make -s train_gpt2 vocab >/dev/null || { fail build "make train_gpt2 vocab"; exit 1; }
PY=/usr/bin/python3
D=$TMP/data
mkdir -p "$D"
$PY tests/make_shard.py "$D/s_train_000.bin" 60000 1
$PY tests/make_shard.py "$D/s_train_001.bin" 40000 2
$PY tests/make_shard.py "$D/s_val_000.bin" 10000 3
TRAIN="$D/s_train_*.bin"; VAL="$D/s_val_*.bin"
RUN=(./train_gpt2 -e d1 -i "$TRAIN" -j "$VAL" -b 4 -t 32 -g 0 -tz "")

# --- it learns: val loss falls well below its start (ln 50257 = 10.8)
"${RUN[@]}" -x 60 -l 3e-3 -v 60 -m 8 > "$TMP/learn.txt" 2>&1
first=$(grep -m1 'val loss' "$TMP/learn.txt" | sed 's/.*val loss //')
last=$(grep 'val loss' "$TMP/learn.txt" | tail -1 | sed 's/.*val loss //')
if awk -v a="$first" -v b="$last" 'BEGIN{exit !(a > 10 && b < a - 3)}'; then
    pass "val loss falls ($first -> $last)"
else
    fail "val loss falls" "from '$first' to '$last'"; tail -5 "$TMP/learn.txt"
fi

# --- it learns real text: 200 steps of d1 on Moby-Dick take the val loss
# from ln(50257) = 10.8 to about 7.1 (the unigram model of the text scores 7.1)
make -s data-mobydick >/dev/null 2>&1 || fail "data-mobydick" "make data-mobydick failed"
./train_gpt2 -e d1 -b 8 -t 64 -x 200 -l 5e-3 -u 20 -v 200 -m 20 -g 0 > "$TMP/moby.txt" 2>&1
last=$(grep 'val loss' "$TMP/moby.txt" | tail -1 | sed 's/.*val loss //')
if awk -v b="$last" 'BEGIN{exit !(b != "" && b < 7.4)}'; then
    pass "Moby-Dick: val loss 10.84 -> $last in 200 steps"
else
    fail "Moby-Dick val loss falls below 7.4" "got '$last'"; tail -3 "$TMP/moby.txt"
fi

# --- -sl / -sg: a step whose loss (grad norm) z-score over the last 128
# steps exceeds the threshold is not applied; none before the window is full.
# The losses fall steadily at higher learning rates (none is above the
# window's mean), so -sl runs at a small lr, where batch noise makes some so.
skip_check() {  # NAME FLAG LR: skips happen, only after step 128, the losses before are the same, the weights after differ
    local name=$1 flag=$2 lr=$3 skipped first same_before differs_after
    "${RUN[@]}" -x 140 -v 1000 -m 1 -l "$lr" -o "$TMP/noskip$flag" > "$TMP/noskip_$flag.txt" 2>&1
    "${RUN[@]}" -x 140 -v 1000 -m 1 -l "$lr" "$flag" 1e-6 -o "$TMP/skip$flag" > "$TMP/skip_$flag.txt" 2>&1
    skipped=$(grep -c 'update skipped' "$TMP/skip_$flag.txt")
    first=$(grep -m1 'update skipped' "$TMP/skip_$flag.txt" | sed 's/^step \([0-9]*\):.*/\1/')
    losses() { grep '^step [0-9]*/140 | loss' "$1" | sed 's/ | [0-9.]* ms .*//'; }
    same_before=$([ "$(losses "$TMP/noskip_$flag.txt" | head -n "${first:-1}")" = \
                    "$(losses "$TMP/skip_$flag.txt" | head -n "${first:-1}")" ] && echo 1)
    differs_after=$(cmp -s "$TMP/noskip$flag/model_00000140.bin" "$TMP/skip$flag/model_00000140.bin" || echo 1)
    if [ "$skipped" -gt 0 ] && [ "${first:-0}" -gt 128 ] && [ "$same_before" = 1 ] && [ "$differs_after" = 1 ]
    then pass "$name ($skipped of the last 12 skipped, the first at step $first)"
    else fail "$name" "skipped $skipped, first at '$first', same before: '$same_before', differs after: '$differs_after'"; fi
}
skip_check "-sl 1e-6 skips updates on high-loss steps after the 128-step window" -sl 1e-5
skip_check "-sg 1e-6 skips updates on high-norm steps after the 128-step window" -sg 3e-4

# --- resume is exact: 20 steps straight == 10 steps + resume + 10 steps
"${RUN[@]}" -x 20 -d 256 -o "$TMP/straight" -n 10 -s 5 -g 4 > "$TMP/straight.txt" 2>&1
"${RUN[@]}" -x 20 -d 256 -o "$TMP/split" -n 10 -s 5 -g 4 > /dev/null 2>&1
# drop the step-20 files of the split run, then redo 11..20 from step 10
rm -f "$TMP/split/model_00000020.bin" "$TMP/split/state_00000020_00000.bin"
"${RUN[@]}" -x 20 -d 256 -o "$TMP/split" -n 10 -s 5 -g 4 -y 1 > "$TMP/resumed.txt" 2>&1
losses() { grep '^step' "$1" | grep -v val | sed 's/ |.*ms.*//' | sed -n '/^step 1[1-9]\/\|^step 20\//p'; }
if [ -n "$(losses "$TMP/straight.txt")" ] && [ "$(losses "$TMP/straight.txt")" = "$(losses "$TMP/resumed.txt")" ]; then
    pass "resumed losses identical (steps 11-20)"
else
    fail "resumed losses identical" "$(diff <(losses "$TMP/straight.txt") <(losses "$TMP/resumed.txt") | head -5)"
fi
check "resumed weights bitwise identical" cmp "$TMP/straight/model_00000020.bin" "$TMP/split/model_00000020.bin"
check "resumed optimizer state bitwise identical" cmp "$TMP/straight/state_00000020_00000.bin" "$TMP/split/state_00000020_00000.bin"
samples() { grep '^sample' "$1" | tail -2; }
if [ "$(samples "$TMP/straight.txt")" = "$(samples "$TMP/resumed.txt")" ]; then
    pass "resumed samples identical"; else fail "resumed samples identical" "sampler state not restored"; fi
if ls "$TMP/straight"/*.tmp >/dev/null 2>&1; then fail "no temp files left" "$(ls "$TMP/straight")"; else pass "no temp files left"; fi
check "log.jsonl has a line per step" test "$(grep -c train_loss "$TMP/straight/log.jsonl")" -eq 20
# the loss curve: quotes in the path and title reach gnuplot as text; a
# folder that is not there is an error (gnuplot itself would print the PNG)
mkdir -p "$TMP/it's"
check "plot_loss.sh: a PNG, with quotes in path and title" bash -c 'bash scripts/plot_loss.sh "$1" "$2" "Ahab'"'"'s run_1" &&
    [ "$(head -c 4 "$2" | od -An -tx1 | tr -d " \n")" = 89504e47 ]' _ "$TMP/straight/log.jsonl" "$TMP/it's/loss.png"
expect_error "plot_loss.sh: no such folder" "no writable folder" bash scripts/plot_loss.sh "$TMP/straight/log.jsonl" "$TMP/none/l.png"
expect_error "plot_loss.sh: a folder as the output" "not a writable file" bash scripts/plot_loss.sh "$TMP/straight/log.jsonl" "$TMP"
# compare_losses.sh's tolerances are numbers (awk took "abc" as a string: any difference passed)
expect_error "compare_losses.sh: tolerance abc" "tolerance 'abc' is not a decimal number" \
    bash scripts/compare_losses.sh "$TMP/learn.txt" "$TMP/learn.txt" abc

# generation from a prompt: the prompt, then -g tokens; the same seed gives the same text
gen=(./train_gpt2 -e "$TMP/straight/model_00000020.bin" -p "Call me Ishmael." -g 12 -tk 40 -sd 7)
"${gen[@]}" > "$TMP/gen1.txt" 2>&1; "${gen[@]}" > "$TMP/gen2.txt" 2>&1
if grep -q "^Call me Ishmael\." "$TMP/gen1.txt" && [ "$(wc -c < "$TMP/gen1.txt")" -gt 30 ] && cmp -s "$TMP/gen1.txt" "$TMP/gen2.txt"; then
    pass "prompt generation continues the prompt, reproducibly"
else
    fail "prompt generation" "$(head -c 300 "$TMP/gen1.txt")"
fi
expect_error "-p without a tokenizer file" "needs the tokenizer" "${gen[@]}" -tz "$TMP/none.bin"
if ./train_gpt2 -e "$TMP/straight/model_00000020.bin" -p "" -g 12 -sd 7 > "$TMP/gen0.txt" 2>&1 && \
        [ "$(wc -c < "$TMP/gen0.txt")" -gt 10 ] && ! grep -q '^step' "$TMP/gen0.txt"; then
    pass "-p \"\" samples from the start token alone, no training"
else fail "-p \"\" samples" "$(head -c 300 "$TMP/gen0.txt")"; fi
$PY tests/make_model.py "$TMP/small_v.bin" 1 1 32 1000 64 3
expect_error "-p with tokens outside a small model's vocabulary" "outside the model's vocabulary of 1000" \
    "${gen[@]}" -e "$TMP/small_v.bin"

# -nk keeps only the newest N checkpoints, the final one included
"${RUN[@]}" -x 7 -o "$TMP/keep" -n 2 -nk 2 > /dev/null 2>&1
check "-nk 2 keeps the newest two checkpoints" test "$(cd "$TMP/keep" && echo model_*.bin state_*.bin)" = \
    "model_00000006.bin model_00000007.bin state_00000006_00000.bin state_00000007_00000.bin"
# -nm 4 keeps the major checkpoints (multiples of 4) beside the newest two
"${RUN[@]}" -x 9 -o "$TMP/major" -n 2 -nk 2 -nm 4 > /dev/null 2>&1
check "-nm 4 keeps every 4th checkpoint beside -nk's" test "$(cd "$TMP/major" && echo model_*.bin)" = \
    "model_00000004.bin model_00000008.bin model_00000009.bin"
# a directory name with glob characters still resumes
mkdir -p "$TMP/odd[1]"
"${RUN[@]}" -x 2 -o "$TMP/odd[1]" > /dev/null 2>&1
check "-o with glob characters resumes" "${RUN[@]}" -x 3 -o "$TMP/odd[1]" -y 1
expect_error "-o holding checkpoints without -y" "already holds checkpoints" "${RUN[@]}" -x 3 -o "$TMP/keep"
# -a (overfit one batch) trains on the same batch after a resume
"${RUN[@]}" -x 4 -a 1 -sh 0 -o "$TMP/of1" > "$TMP/of1.txt" 2>&1
"${RUN[@]}" -x 4 -a 1 -sh 0 -o "$TMP/of2" -n 2 > /dev/null 2>&1
rm -f "$TMP/of2/model_00000004.bin" "$TMP/of2/state_00000004_00000.bin"
"${RUN[@]}" -x 4 -a 1 -sh 0 -o "$TMP/of2" -n 2 -y 1 > "$TMP/of2.txt" 2>&1
if [ "$(grep '^step 4/4 | loss' "$TMP/of1.txt" | cut -d'|' -f2)" = "$(grep '^step 4/4 | loss' "$TMP/of2.txt" | cut -d'|' -f2)" ]; then
    pass "-a 1 resumes on the same batch"; else fail "-a 1 resumes on the same batch" "losses differ"; fi

# --- bad flags
expect_error "unknown flag" "unknown flag" "${RUN[@]}" -zz 1
expect_error "prefix of a flag is not a flag" "unknown flag" "${RUN[@]}" --batch 4
expect_error "-b 0" "-b must be in" "${RUN[@]}" -b 0
expect_error "-v 0" "-v must be in" "${RUN[@]}" -v 0
expect_error "-sl negative" "-sl must be in" "${RUN[@]}" -sl -1
expect_error "-nm negative" "-nm must be in" "${RUN[@]}" -nm -3
expect_error "-b not a number" "expects an integer" "${RUN[@]}" -b four
expect_error "-l not a number" "expects a number" "${RUN[@]}" -l 1e-3x
# plain decimal only (strtol and strtod took these)
for bad in "-b| 4" "-b|+4" "-l|0x1p-3" "-l|inf" "-l| 1e-3"; do
    expect_error "${bad%%|*} '${bad#*|}' is refused" "got '${bad#*|}'" "${RUN[@]}" "${bad%%|*}" "${bad#*|}"
done
expect_error "flag without value" "needs a value" "${RUN[@]}" -x
expect_error "-t above the model's maximum" "exceeds the model's maximum" "${RUN[@]}" -t 2048
expect_error "-k unknown schedule" "-k must be" "${RUN[@]}" -k sine
expect_error "-d not a multiple of B*T" "not a multiple" "${RUN[@]}" -d 100
expect_error "-d 0" "-d must be" "${RUN[@]}" -d 0
# a model file with maxT = 65536 (C = 1) lets B*T overflow an int
$PY -c "
import numpy as np; V, Vp, T, L, C = 50257, 50304, 65536, 1, 1
n = Vp*C + T*C + L*(C + C + 3*C*C + 3*C + C*C + C + C + C + 4*C*C + 4*C + 4*C*C + C) + 2*C
h = np.zeros(256, np.int32); h[:8] = [20240326, 3, T, V, L, 1, C, Vp]
open('$TMP/longT.bin', 'wb').write(h.tobytes() + np.zeros(n, np.float32).tobytes())"
expect_error "B*T over 2^31" "more than 2^31" "${RUN[@]}" -e "$TMP/longT.bin" -b 65536 -t 65536
$PY tests/make_shard.py "$D/big_train_000.bin" 600000 4
expect_error "more memory than the machine" "lower -b or -t" "${RUN[@]}" -e d12 -b 512 -t 1024 -i "$D/big_train_000.bin" -j ""
expect_error "-e neither file nor descriptor" "neither a model file" "${RUN[@]}" -e nosuchmodel.bin
expect_error "-y without a checkpoint" "no checkpoint" "${RUN[@]}" -o "$TMP/empty" -y 1
mkdir -p "$TMP/fifo_out"; mkfifo "$TMP/fifo_out/log.jsonl"   # (opening it for the log would block for ever)
expect_error "-o holding a FIFO named log.jsonl" "not a regular file" "${RUN[@]}" -x 1 -o "$TMP/fifo_out"
# libgomp reads OMP_NUM_THREADS unchecked (2^31: -2^31 threads; 10^8: a crash)
expect_error "OMP_NUM_THREADS=99999999" "OMP_NUM_THREADS=99999999 is not a thread count" \
    env OMP_NUM_THREADS=99999999 "${RUN[@]}"
check "OMP_NUM_THREADS=2,1 (a count per nesting level) is accepted" env OMP_NUM_THREADS=2,1 ./train_gpt2 -h
expect_error "-i matching nothing" "no token shards match" ./train_gpt2 -e d1 -i "$D/nothing_*.bin"
expect_error "-e d01 is no descriptor" "neither a model file nor a descriptor" ./train_gpt2 -e d01
expect_error "-x -1 with less data than one step of -d" "less than one step" "${RUN[@]}" -d $((4 * 32 * 4096)) -x -1
# every flag of the CPU trainer's table (llmc/train_loop.h, before the GPU's) as "-x, --name"
table_flags=$(sed -n '/ArgSpec table\[\] = {/,/#ifdef TRAINER_GPU/s/.*{"\(-[a-z0-9]*\)", "\(--[a-z0-9-]*\)".*/\1, \2/p' llmc/train_loop.h)
check_help_lists "--help lists every flag of the table" 30 "$table_flags" "$(./train_gpt2 --help)"

# --- bad files: shard, model, state; each a one-line error, never a crash
hdr() { # hdr FILE MAGIC VERSION FIELD2 : a 1024-byte header
    $PY -c "import numpy as np,sys; h=np.zeros(256,np.int32); h[:3]=[int(a) for a in sys.argv[2:5]]; open(sys.argv[1],'wb').write(h.tobytes())" "$@"
}
B=$TMP/bad; mkdir -p "$B"
: > "$B/empty.bin"
head -c 5000 /dev/urandom > "$B/random.bin"
head -c 500 "$D/s_val_000.bin" > "$B/short_header.bin"
hdr "$B/magic.bin" 12345 1 100; head -c 200 /dev/zero >> "$B/magic.bin"
hdr "$B/version.bin" 20240520 7 100; head -c 200 /dev/zero >> "$B/version.bin"
hdr "$B/claims_more.bin" 20240520 1 1000000; head -c 2000 /dev/zero >> "$B/claims_more.bin"
hdr "$B/tiny.bin" 20240520 1 10; head -c 20 /dev/zero >> "$B/tiny.bin"
hdr "$B/negative.bin" 20240520 1 -5
$PY -c "import numpy as np; h=np.zeros(256,np.int32); h[:3]=[20240520,1,1000]; open('$B/bigtok.bin','wb').write(h.tobytes()+np.full(1000,60000,np.uint16).tobytes())"
for f in empty random short_header magic version claims_more tiny negative bigtok; do
    case $f in
        empty|short_header) want=truncated;; random|magic) want="not a token shard";;
        version) want="version 7";; claims_more) want="header implies";; tiny) want="fewer than one batch";;
        negative) want="declares -5 tokens";; bigtok) want="outside the vocabulary";;
    esac
    expect_error "shard: $f" "$want" ./train_gpt2 -e d1 -b 4 -t 32 -i "$B/$f.bin" -j "" -x 1
done

M=$TMP/straight/model_00000020.bin
S=$TMP/straight/state_00000020_00000.bin
model_bad() { # model_bad NAME WANT FILE: training from FILE must fail with WANT
    expect_error "model file: $1" "$2" ./train_gpt2 -e "$3" -i "$TRAIN" -j "" -b 4 -t 32 -x 1
}
model_bad empty truncated "$B/empty.bin"
model_bad random "not a model checkpoint" "$B/random.bin"
hdr "$B/m_version.bin" 20240326 4 1024; model_bad "wrong version" "version 4" "$B/m_version.bin"
head -c 100000 "$M" > "$B/m_trunc.bin"; model_bad truncated "header implies" "$B/m_trunc.bin"
cp "$M" "$B/m_long.bin"; echo junk >> "$B/m_long.bin"; model_bad "trailing bytes" "header implies" "$B/m_long.bin"
$PY -c "
import numpy as np; d=bytearray(open('$M','rb').read()); h=np.frombuffer(d[:1024],np.int32).copy()
h[4]=100000; open('$B/m_config.bin','wb').write(h.tobytes()+d[1024:])
d[5000]^=1; open('$B/m_flip.bin','wb').write(d)"
model_bad "nonsense config" "invalid model config" "$B/m_config.bin"
model_bad "flipped bit (checksum)" "corrupt" "$B/m_flip.bin"
# the checksum covers the config too (slot 8 = 2); slot 8 = 1, the tensors
# alone, is what files written before that hold, and must still load
$PY -c "
import zlib, numpy as np; d=open('$M','rb').read(); h=np.frombuffer(d[:1024],np.int32).copy()
e=h.copy(); e[5]*=2; open('$B/m_heads.bin','wb').write(e.tobytes()+d[1024:])
e=h.copy(); e[8]=7; open('$B/m_kind.bin','wb').write(e.tobytes()+d[1024:])
e=h.copy(); e[8]=1; e[9]=np.uint32(zlib.crc32(d[1024:])).view(np.int32); open('$B/m_kind1.bin','wb').write(e.tobytes()+d[1024:])
e=h.copy(); e[8]=0; p=np.frombuffer(d[1024:],np.float32).copy(); p[7]=np.nan; open('$B/m_nan.bin','wb').write(e.tobytes()+p.tobytes())
e=h.copy(); e[8]=0; open('$B/m_huge.bin','wb').write(e.tobytes()+np.full((len(d)-1024)//4,3e38,np.float32).tobytes())"
model_bad "edited number of heads (checksum)" "corrupt" "$B/m_heads.bin"
model_bad "unknown checksum kind" "unknown checksum kind 7" "$B/m_kind.bin"
check "a model file checksummed without its config (slot 8 = 1) loads" \
    ./train_gpt2 -e "$B/m_kind1.bin" -i "$TRAIN" -j "" -b 4 -t 32 -x 1 -g 0 -tz ""
model_bad "a NaN weight" "weights hold NaN or inf (parameter 7)" "$B/m_nan.bin"
# finite weights so large that the forward overflows: sampling and the val
# loss stop (the val loss was printed as nan, and logged as such, exit 0)
expect_error "sampling from overflowing weights stops" "overflow the forward" "${gen[@]}" -e "$B/m_huge.bin"
expect_error "a val loss that is not finite" "is not finite" \
    ./train_gpt2 -e "$B/m_huge.bin" -i "$TRAIN" -j "$VAL" -b 4 -t 32 -x 1

state_bad() { # state_bad NAME WANT FILE: resuming with FILE as the state must fail with WANT
    rm -rf "$TMP/sb"; mkdir -p "$TMP/sb"; cp "$M" "$TMP/sb/model_00000020.bin"; cp "$3" "$TMP/sb/state_00000020_00000.bin"
    expect_error "state file: $1" "$2" "${RUN[@]}" -x 30 -o "$TMP/sb" -y 1
}
state_bad empty truncated "$B/empty.bin"
state_bad random "not a training state" "$B/random.bin"
hdr "$B/s_version.bin" 20240527 9 0; state_bad "wrong version" "version 9" "$B/s_version.bin"
head -c 100000 "$S" > "$B/s_trunc.bin"; state_bad truncated "header implies" "$B/s_trunc.bin"
$PY -c "d=bytearray(open('$S','rb').read()); d[3000]^=4; open('$B/s_flip.bin','wb').write(d)"
state_bad "flipped bit (checksum)" "corrupt" "$B/s_flip.bin"
$PY -c "
import numpy as np; d=bytearray(open('$S','rb').read()); h=np.frombuffer(d[:1024],np.int32).copy()
h[22]=99; open('$B/s_pos.bin','wb').write(h.tobytes()+d[1024:])"
state_bad "edited data position (header checksum)" "corrupt" "$B/s_pos.bin"
# checksummed anew after the edit, so only the loader's own checks can catch
# them: moments AdamW cannot make, an epoch past any run
$PY -c "
import zlib, numpy as np; d=open('$S','rb').read(); h=np.frombuffer(d[:1024],np.int32).copy()
def put(name, h, payload):
    u=h.copy(); u[8]=0; h=h.copy(); h[8]=np.uint32(zlib.crc32(payload, zlib.crc32(u.tobytes()))).view(np.int32)
    open('$B/'+name,'wb').write(h.tobytes()+payload)
p=np.frombuffer(d[1024:],np.float32).copy(); p[5]=np.nan; put('s_nan.bin', h, p.tobytes())
p=np.frombuffer(d[1024:],np.float32).copy(); p[len(p)//2+5]=-1; put('s_negv.bin', h, p.tobytes())
e=h.copy(); e[18]=-1; e[19]=2**31-1; put('s_epoch.bin', e, d[1024:])
e=h.copy(); e[3]=2; put('s_world2.bin', e, d[1024:])
e=h.copy(); e[7]=0; put('s_kind0.bin', e, d[1024:])"
$PY tests/huge_moment.py "$S" "$B/s_hugem.bin" 100
state_bad "NaN first moment" "AdamW moments at element 5" "$B/s_nan.bin"
state_bad "negative second moment" "not finite, or v < 0" "$B/s_negv.bin"
state_bad "epoch past any run" "invalid data position: epoch 9223372036854775807" "$B/s_epoch.bin"
# a first moment near FLT_MAX, its v 0: the next update makes a weight inf,
# which must not be saved over as the latest checkpoint (no val loss here
# to stop the run first)
rm -rf "$TMP/sb"; mkdir -p "$TMP/sb"; cp "$M" "$TMP/sb/model_00000020.bin"; cp "$B/s_hugem.bin" "$TMP/sb/state_00000020_00000.bin"
expect_error "an update that makes a weight inf is not saved" "step 21: the weights hold NaN or inf; not writing '$TMP/sb/model_00000021.bin'" \
    ./train_gpt2 -e d1 -i "$TRAIN" -j "" -b 4 -t 32 -g 0 -tz "" -x 21 -n 1 -o "$TMP/sb" -y 1
check "... and the last good checkpoint is still the latest, with no file of step 21" \
    test "$(ls "$TMP/sb" | grep -v log.jsonl)" = "$(printf 'model_00000020.bin\nstate_00000020_00000.bin')"
state_bad "written by 2 ranks, rank 1's file missing" "lack a rank's state file" "$B/s_world2.bin"
state_bad "another checksum kind" "checksum kind 0 in header slot 7, want 1" "$B/s_kind0.bin"
rm -rf "$TMP/sb"; mkdir -p "$TMP/sb"; cp "$M" "$TMP/sb/model_00000020.bin"; cp "$S" "$TMP/sb/state_00000020_00000.bin"
expect_error "state file: other B" "was written with B=4" "${RUN[@]}" -b 2 -x 30 -o "$TMP/sb" -y 1

# --- the softmax and GELU loops are vectorised on AVX2 (x86-64-v3, whatever
# this machine has). gcc leaves them scalar there unless told that no FP trap
# is enabled (-fno-trapping-math), and splits a vector wider than a register
# into scalar selects (cmov); AVX-512 hides both, and the step took 2x longer.
if ! "${CC:-cc}" -dumpmachine | grep -q '^x86_64-'; then
    echo "(avx2_loops_vectorised: not an x86-64 compiler, not checked)"
elif ! out=$(make -s build/avx2/train_gpt2.o 2>&1); then
    fail avx2_loops_vectorised "make build/avx2/train_gpt2.o failed: $out"
else
    counts=$(objdump -d --no-show-raw-insn build/avx2/train_gpt2.o | awk '
        /^[0-9a-f]+ <(crossentropy|gelu)_(forward|backward)\._omp_fn\.0>:/ { f = $2; fma[f] = 0; cmov[f] = 0; next }
        /^$/ { f = "" }
        f && /\tvfmadd[0-9]+ps .*%ymm/ { fma[f]++ }
        f && /\tcmov/ { cmov[f]++ }
        END { for (f in fma) printf "%s fma=%d cmov=%d\n", f, fma[f], cmov[f] }' | sort)
    if [ "$(echo "$counts" | grep -c 'fma=[1-9]')" != 4 ]; then
        fail avx2_loops_vectorised "a loop without packed ymm FMAs: $(echo $counts)"
    elif ! echo "$counts" | grep -q '<crossentropy_forward._omp_fn.0>: fma=[0-9]* cmov=0'; then
        fail avx2_loops_vectorised "max_of's lanes became scalar selects: $(echo $counts)"
    else
        pass avx2_loops_vectorised
    fi
fi

# --- make bench's script (scripts/bench_cpu.sh): ours and PyTorch's step
# side by side, at a tiny shape here; its settings are checked
if out=$(BENCH_MODEL=d1 BENCH_B=1 BENCH_T=8 bash scripts/bench_cpu.sh 2>&1) &&
   printf '%s\n' "$out" | grep -Eq '^speedup \(pytorch / train_gpt2\): [0-9.]+x$'; then pass "bench_cpu.sh: both steps timed, a ratio"
else fail "bench_cpu.sh: both steps timed, a ratio" "$(printf '%s\n' "$out" | tail -3)"; fi
expect_error "bench_cpu.sh: BENCH_B=abc" "BENCH_B=abc: want a whole number" env BENCH_B=abc bash scripts/bench_cpu.sh

# --- make NO_OMP=1 after a build rebuilds (build/c_flags: the flags are part
# of what a binary is made from), and the default build comes back the same way
make -s NO_OMP=1 train_gpt2 > /dev/null 2>&1
if ldd train_gpt2 | grep -q libgomp; then omp_after_no_omp=yes; else omp_after_no_omp=no; fi
make -s train_gpt2 > /dev/null 2>&1
if [ $omp_after_no_omp = no ] && ldd train_gpt2 | grep -q libgomp; then pass "make NO_OMP=1, then make: each rebuilds train_gpt2"
else fail "make NO_OMP=1, then make: each rebuilds train_gpt2" "OpenMP after NO_OMP=1: $omp_after_no_omp; then: $(ldd train_gpt2 | grep -c libgomp)"; fi
