# tests/t_multirank.sh: the CPU trainer data parallel under mpirun, with
# every ZeRO stage on 1 to 4 ranks (llmc/comm.h, llmc/zero.h): the same
# training as one process at the same total batch, resume on another number
# of ranks, and faults (a hung rank, a killed rank, ranks that disagree).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
make -s train_gpt2 tests/test_zero tests/test_rendezvous >/dev/null 2>&1 || { fail build "make train_gpt2 tests/test_zero tests/test_rendezvous"; exit 1; }
check "zero.h: slices and buckets for 4 shapes, re-sharding for 3 of them, x 1..7 ranks" tests/test_zero
# NCCL's id without MPI (-pi tcp / -pi fs): 4 processes, a free port above 20000
mkdir -p "$TMP/rdv"
check "rendezvous.h: tcp and fs hand rank 0's blob to 4 ranks; timeouts; stale files" \
    tests/test_rendezvous "$TMP/rdv" $((20000 + RANDOM % 20000))
if ! ldd train_gpt2 | grep -q libmpi; then
    fail "train_gpt2 is built with MPI" "no MPI in this build: make deps installs OpenMPI"; exit 1
fi

# 4 ranks on a 2-core machine: oversubscribe; one thread per rank
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { local n=$1; shift; timeout 120 mpirun --oversubscribe -np "$n" "$@"; }

# a tiny model whose units do not divide by 3 or 4 ranks (C = 50, maxT = 64,
# Vp = 640: at ZeRO-2/3 its wte moves in vocabulary chunks of 256, 256 and
# 128 rows, parts of two ranks' slices in each)
PY=/usr/bin/python3
$PY tests/make_model.py "$TMP/m.bin" 2 2 50 600 64 5
$PY tests/make_shard.py "$TMP/tr_000.bin" 30000 1 600
$PY tests/make_shard.py "$TMP/va_000.bin" 5000 2 600
# 12 slots of B*T per step: 12, 6, 4 or 3 micro-batches per rank on 1..4 ranks;
# val: 12 batches over all ranks; shuffled (the order does not depend on the ranks)
RUN=(./train_gpt2 -e "$TMP/m.bin" -i "$TMP/tr_*.bin" -j "$TMP/va_*.bin" -b 2 -t 32 -d 768
     -x 8 -l 2e-3 -v 8 -m 12 -g 0 -tz "")

# same_training NAME DIR_A DIR_B: the train losses and grad norms of every
# step and the val losses in the two runs' log.jsonl agree within 2e-5
# (fp32 sums in another order; losses are ~6), and the final model files
# within 1e-4 of the largest weight (1, a layernorm's): a gradient gone wrong
# moves weights by about the learning rate, 2e-3, per step
same_training() {
    $PY - "$2" "$3" <<'EOF'
import json, sys
import numpy as np
def log(d):
    rows = [json.loads(l) for l in open(d + "/log.jsonl")]
    return {(r["step"], k): r[k] for r in rows for k in ("train_loss", "val_loss", "grad_norm") if k in r}
a, b = log(sys.argv[1]), log(sys.argv[2])
if a.keys() != b.keys():
    sys.exit("different steps logged")
worst = max(abs(a[k] - b[k]) for k in a)
w = [np.fromfile(d + "/model_00000008.bin", dtype=np.float32, offset=1024) for d in sys.argv[1:]]
wdiff = float(np.abs(w[0] - w[1]).max() / np.abs(w[0]).max())
print(f"losses and norms within {worst:.1e}, weights {wdiff:.1e}")
sys.exit(0 if worst <= 2e-5 and wdiff <= 1e-4 else 1)
EOF
}

"${RUN[@]}" -o "$TMP/ref" > "$TMP/ref.txt" 2>&1 || { fail "one process" "$(tail -3 "$TMP/ref.txt")"; exit 1; }

# --- every stage on 1..4 ranks trains as one process does
for n in 1 2 3 4; do
    for z in 0 1 2 3; do
        out="$TMP/n${n}z$z"
        if ! mpi "$n" "${RUN[@]}" -z "$z" -o "$out" > "$out.txt" 2>&1; then
            fail "$n rank(s), ZeRO-$z" "exit: $(tail -3 "$out.txt")"; continue
        fi
        if why=$(same_training x "$TMP/ref" "$out" 2>&1); then
            pass "$n rank(s), ZeRO-$z = one process: $why"
        else
            fail "$n rank(s), ZeRO-$z = one process" "$why"
        fi
    done
done
if why=$(same_training x "$TMP/n4z0" "$TMP/n4z3" 2>&1) && why2=$(same_training x "$TMP/n3z1" "$TMP/n3z2" 2>&1); then
    pass "stages agree with each other (4 ranks ZeRO-0 vs 3: $why; 3 ranks ZeRO-1 vs 2: $why2)"
else
    fail "stages agree with each other" "$why $why2"
fi
# the comparison can fail: half the total batch is a different training
mpi 2 "${RUN[@]}" -d 384 -z 2 -o "$TMP/half" > /dev/null 2>&1
if same_training x "$TMP/ref" "$TMP/half" > /dev/null 2>&1; then
    fail "the equivalence check fails on a different total batch" "it passed"
else
    pass "the equivalence check fails on a different total batch"
fi

# --- the same under AddressSanitizer + UBSan on 3 ranks (slices that do not
# divide): ZeRO-2 and 3 with samples and checkpoints, and a resume of the
# ZeRO-3 checkpoint on 2 ranks at ZeRO-1 (leak checks off: OpenMPI's plugins
# leave allocations at exit)
gcc -O1 -g -std=gnu11 -fopenmp -fsanitize=address,undefined -fno-sanitize-recover=undefined -DUSE_MPI \
    $(pkg-config --cflags mpi-c) train_gpt2.c -o "$TMP/train_asan" $(pkg-config --libs libpcre2-8 mpi-c) -lm
asan_ok=1
for z in 2 3; do
    ASAN_OPTIONS=detect_leaks=0 mpi 3 "$TMP/train_asan" "${RUN[@]:1}" -x 4 -v 2 -m 6 -s 2 -g 4 -z $z -n 2 -o "$TMP/asan$z" \
        > "$TMP/asan$z.txt" 2>&1 || asan_ok=0
done
rm "$TMP/asan3"/*00000004*
ASAN_OPTIONS=detect_leaks=0 mpi 2 "$TMP/train_asan" "${RUN[@]:1}" -x 4 -v 2 -m 6 -g 0 -z 1 -y 1 -o "$TMP/asan3" \
    > "$TMP/asan_resume.txt" 2>&1 || asan_ok=0
if [ $asan_ok = 1 ] && ! grep -qE 'ERROR: AddressSanitizer|runtime error' "$TMP"/asan*.txt; then
    pass "ASan + UBSan, 3 ranks: ZeRO-2 and 3 with samples and checkpoints, resume on 2 ranks: no errors"
else fail "ASan + UBSan, 3 ranks" "$(grep -h -m3 -E 'ERROR|runtime error|error:' "$TMP"/asan*.txt)"; fi

# --- memory: ZeRO-3 on 4 ranks keeps 1/4 of the parameters, gradients and
# AdamW moments of ZeRO-0 (plus padding), and says so at start (d2: 7M parameters)
for z in 0 3; do
    mpi 4 ./train_gpt2 -e d2 -i "$TMP/tr_*.bin" -j "" -b 1 -t 32 -x 1 -g 0 -z $z > "$TMP/mem$z.txt" 2>&1
done
mem() { grep -m1 'memory per rank' "$1" | sed 's/.*parameters \([0-9.]*\) MiB, gradients \([0-9.]*\) MiB, AdamW \([0-9.]*\) MiB, bucket buffers \([0-9.]*\).*/\1 \2 \3 \4/'; }
read -r p0 g0 a0 b0 <<< "$(mem "$TMP/mem0.txt")"; read -r p3 g3 a3 b3 <<< "$(mem "$TMP/mem3.txt")"
if awk -v a="$p0 $g0 $a0" -v b="$p3 $g3 $a3" 'BEGIN{split(a,x," "); split(b,y," "); ok=1
        for (i=1;i<=3;i++) if (!(x[i] > 0 && y[i] <= x[i]/4*1.02 && y[i] >= x[i]/4*0.98)) ok=0; exit !ok}'; then
    pass "ZeRO-3 on 4 ranks: parameters, gradients, AdamW $p3/$g3/$a3 MiB = 1/4 of ZeRO-0's $p0/$g0/$a0"
else
    fail "ZeRO-3 on 4 ranks holds 1/4 of the state" "ZeRO-0: '$p0 $g0 $a0', ZeRO-3: '$p3 $g3 $a3'"
fi
# and with the buffers it gathers into and reduces from, close to 1/4 too:
# the tied wte (90% of d2) moves in vocabulary chunks, never whole
# (gathered whole, the buffers alone were 59.8 MiB: 81% of ZeRO-0's total)
if awk -v a="$p0 $g0 $a0 $b0" -v b="$p3 $g3 $a3 $b3" 'BEGIN{split(a,x," "); split(b,y," ")
        exit !(x[1]+x[2]+x[3]+x[4] > 0 && y[1]+y[2]+y[3]+y[4] <= 0.35 * (x[1]+x[2]+x[3]+x[4]))}'; then
    pass "ZeRO-3 on 4 ranks: with its buffers ($b3 MiB) at most 0.35 of ZeRO-0's memory"
else
    fail "ZeRO-3 on 4 ranks: with its buffers at most 0.35 of ZeRO-0's memory" "ZeRO-0: '$p0 $g0 $a0 $b0', ZeRO-3: '$p3 $g3 $a3 $b3'"
fi

# --- checkpoints: one model file and a state file per rank; resume on
# another number of ranks (and stage) continues the same training
mpi 4 "${RUN[@]}" -z 3 -n 4 -o "$TMP/ck" > "$TMP/ck.txt" 2>&1
states=$(ls "$TMP/ck" | grep -c '^state_00000004_0000[0-3].bin$')
[ "$states" = 4 ] && [ -f "$TMP/ck/model_00000004.bin" ] && pass "4 ranks write model_00000004.bin and 4 state files" \
    || fail "4 ranks write a model file and 4 state files" "$(ls "$TMP/ck")"
resume_check() {  # FROM_DIR RANKS STAGE: resume step 4 of a 4-rank run on RANKS ranks at STAGE
    local dir="$TMP/resume_$2_$3"
    rm -rf "$dir"; mkdir -p "$dir"
    cp "$TMP/ck/model_00000004.bin" "$TMP/ck"/state_00000004_*.bin "$dir/"
    grep -v '"step":[5-8],' "$TMP/ck/log.jsonl" > "$dir/log.jsonl"
    if [ "$2" = 1 ]; then "${RUN[@]}" -z "$3" -y 1 -o "$dir" > "$dir.txt" 2>&1
    else mpi "$2" "${RUN[@]}" -z "$3" -y 1 -o "$dir" > "$dir.txt" 2>&1; fi
    if grep -q 'written on 4 ranks' "$dir.txt" && why=$(same_training x "$TMP/ref" "$dir" 2>&1); then
        pass "4 ranks (ZeRO-3) -> $2 rank(s) (ZeRO-$3) at step 4: $why"
    else
        fail "4 ranks (ZeRO-3) -> $2 rank(s) (ZeRO-$3)" "${why:-} $(grep -m2 -i 'error\|resum' "$dir.txt")"
    fi
}
resume_check 4 2 1
resume_check 4 3 0
resume_check 4 1 2
if [ "$(ls "$TMP/resume_3_0" | grep -c '^state_00000008_')" = 3 ]; then
    pass "the run resumed on 3 ranks writes 3 state files"
else
    fail "the run resumed on 3 ranks writes 3 state files" "$(ls "$TMP/resume_3_0")"
fi
# -nk 1 keeps one checkpoint: the older ones go with every rank's state file
mpi 3 "${RUN[@]}" -z 1 -n 2 -nk 1 -o "$TMP/keep" > /dev/null 2>&1
left=$(ls "$TMP/keep" | grep -v log.jsonl | tr '\n' ' ')
[ "$left" = "model_00000008.bin state_00000008_00000.bin state_00000008_00001.bin state_00000008_00002.bin " ] \
    && pass "-nk 1 on 3 ranks leaves the last checkpoint's 4 files" || fail "-nk 1 on 3 ranks" "left: $left"

# a forged first moment in rank 0's slice (element 100 of wte), -l 2e-2 and no
# val loss to stop the run first: the update makes a weight inf on rank 0
# only, and both ranks stop before any file of step 9 is written (rank 0 used
# to stop after every rank had written its state file: an incomplete checkpoint)
mkdir -p "$TMP/inf"; cp "$TMP/ref/model_00000008.bin" "$TMP/inf/"
$PY tests/huge_moment.py "$TMP/ref/state_00000008_00000.bin" "$TMP/inf/state_00000008_00000.bin" 100
expect_error "a weight made inf on rank 0 only: both ranks stop at once, before writing" \
    "step 9: the weights hold NaN or inf" mpirun --oversubscribe -np 2 "${RUN[@]}" -x 9 -l 2e-2 -j "" -z 3 -ct 100 -o "$TMP/inf" -y 1
left=$(ls "$TMP/inf" | grep -v log.jsonl | tr '\n' ' ')
[ "$left" = "model_00000008.bin state_00000008_00000.bin " ] \
    && pass "... and no file of step 9" || fail "... and no file of step 9" "left: $left"

# --- faults end the job in bounded time, naming the rank
LONG=(./train_gpt2 -e "$TMP/m.bin" -i "$TMP/tr_*.bin" -j "" -b 2 -t 32 -x 1000000 -g 0 -tz "")
fault_check() {  # NAME SIGNAL WANT: sends SIGNAL to rank 1 of 3 mid-run; the job must end within 30 s
    local name=$1 sig=$2 want=$3 log="$TMP/fault_$2.txt" pid="" t0 rc
    mpi 3 "${LONG[@]}" -ct 2 > "$log" 2>&1 &
    local job=$!
    for _ in $(seq 100); do  # rank 1's pid, once it trains
        for p in $(pgrep -f "train_gpt2 -e $TMP/m.bin"); do
            tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && pid=$p
        done
        [ -n "$pid" ] && grep -q '^step 3/' "$log" && break
        sleep 0.1
    done
    if [ -z "$pid" ]; then fail "$name" "rank 1 not found"; kill $job; return; fi
    t0=$(date +%s); kill -"$sig" "$pid"
    for _ in $(seq 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
    if kill -0 $job 2>/dev/null; then
        fail "$name" "still running 30 s later"; kill -KILL "$pid"; pkill -f "train_gpt2 -e $TMP/m.bin"; wait $job; return
    fi
    wait $job; rc=$?
    if [ $rc -ne 0 ] && grep -q -- "$want" "$log"; then
        pass "$name: ends in $(( $(date +%s) - t0 )) s, exit $rc, '$want'"
    else
        fail "$name" "exit $rc; $(grep -v '^step' "$log" | head -5)"
    fi
}
fault_check "a hung rank (SIGSTOP) ends the job after -ct 2" STOP "rank 1 does not answer"
fault_check "a killed rank (SIGKILL) ends the job" KILL "process rank 1"

# --- ranks that disagree are refused at start; bad -z, -ct
if out=$(timeout 60 mpirun --oversubscribe -np 1 "${RUN[@]}" -b 2 : -np 1 "${RUN[@]}" -b 4 2>&1); then
    fail "ranks with different -b are refused" "exit 0"
elif printf '%s' "$out" | grep -q "ranks disagree on -b: rank 1 has 4, rank 0 2"; then
    pass "ranks with different -b are refused"
else fail "ranks with different -b are refused" "$(printf '%s' "$out" | grep -m2 error)"; fi
$PY tests/make_model.py "$TMP/m2.bin" 2 2 50 600 64 6
if out=$(timeout 60 mpirun --oversubscribe -np 1 "${RUN[@]}" : -np 1 "${RUN[@]}" -e "$TMP/m2.bin" 2>&1); then
    fail "ranks with different model files are refused" "exit 0"
elif printf '%s' "$out" | grep -q "ranks disagree on model parameters"; then
    pass "ranks with different model files are refused"
else fail "ranks with different model files are refused" "$(printf '%s' "$out" | grep -m2 error)"; fi
expect_error "-z 4 is refused" "-z" "${RUN[@]}" -z 4
expect_error "-ct 0 is refused" "-ct" "${RUN[@]}" -ct 0
# a launcher whose ranks MPI does not see (srun with an MPI built without
# its PMI) starts each alone: N copies of one training into one -o
for var in SLURM_STEP_NUM_TASKS OMPI_COMM_WORLD_SIZE; do
    expect_error "$var=4 but MPI sees 1 rank" "$var says 4 ranks, but MPI sees 1" env "$var=4" "${RUN[@]}" -x 1
done
# a build without MPI refuses to run as one of several ranks
gcc -O1 -std=gnu11 -fopenmp train_gpt2.c -o "$TMP/train_nompi" $(pkg-config --cflags --libs libpcre2-8) -lm
if out=$(mpi 2 "$TMP/train_nompi" -e "$TMP/m.bin" -i "$TMP/tr_*.bin" -j "" -x 1 2>&1); then
    fail "a build without MPI refuses to run under mpirun -np 2" "exit 0"
elif printf '%s' "$out" | grep -q "this build has no MPI"; then
    pass "a build without MPI refuses to run under mpirun -np 2"
else fail "a build without MPI refuses to run under mpirun -np 2" "$(printf '%s' "$out" | head -3)"; fi

# --- the ready-made runs: scripts/run_gpt2_124M.sh starts one rank per GPU
# (here the CPU trainer on the tiny model: flags after the script win)
if TRAINER=./train_gpt2 NGPU=2 MPIRUN_ARGS=--oversubscribe TRAIN="$TMP/tr_*.bin" VAL="$TMP/va_*.bin" OUT="$TMP/script" \
    timeout 120 bash scripts/run_gpt2_124M.sh -e "$TMP/m.bin" -b 2 -t 32 -d 256 -x 2 -u 0 -v 2 -m 2 -g 0 -n 0 -tz "" \
    > "$TMP/script.txt" 2>&1 && grep -q '^ranks: 2, ZeRO stage 1' "$TMP/script.txt" && [ -f "$TMP/script/model_00000002.bin" ]
then pass "scripts/run_gpt2_124M.sh runs 2 ranks with ZeRO-1 and checkpoints"
else fail "scripts/run_gpt2_124M.sh runs 2 ranks" "$(grep -m3 -i 'error\|ranks' "$TMP/script.txt")"; fi
check "scripts/run_gpt2_124M.slurm is valid bash" bash -n scripts/run_gpt2_124M.slurm

# --- the GPU trainer under the emulation on 2 ranks (MPI standing in for
# NCCL): the same training as on one GPU at the same total batch, ZeRO-0 to
# 3, and a resume of a 2-rank ZeRO-3 run (samples on the way) on one GPU. bf16 sums in another order:
# the GPU trainer's tolerance (scripts/compare_losses.sh: losses 0.01, norms 1%)
make -s build/emu/plain/train_gpt2cu >/dev/null 2>&1 || { fail "build the emulated GPU trainer" "make failed"; exit 0; }
GPU=build/emu/plain/train_gpt2cu
# 64 channels, V = 600 (Vp = 640): at ZeRO-2/3 wte moves in vocabulary
# chunks of 256, 256 and 128 rows (the last mostly padding), which on 2 and
# 3 ranks cross the ranks' slices
$PY tests/make_model.py "$TMP/g.bin" 2 2 64 600 64 5
$PY tests/make_shard.py "$TMP/gtr_000.bin" 20000 1 600
$PY tests/make_shard.py "$TMP/gva_000.bin" 4000 2 600
GARGS=(-e "$TMP/g.bin" -i "$TMP/gtr_*.bin" -j "$TMP/gva_*.bin" -b 2 -t 16 -d 64 -x 6 -v 3 -m 2 -l 1e-3 -g 0 -tz "")
expect_error "-pi must be mpi, tcp or fs" "-pi must be" "$GPU" -pi carrier-pigeon
LLMC_WORLD_SIZE=2 LLMC_RANK=0 LLMC_LOCAL_RANK=0 expect_error "the emulated GPU trainer meets other ranks over MPI only" \
    "over MPI only" "$GPU" -e "$TMP/g.bin" -i "$TMP/gtr_*.bin" -j "" -x 1 -pi tcp -ps 127.0.0.1:1
LLMC_WORLD_SIZE=2 LLMC_RANK=5 expect_error "a rank outside the environment's world is refused" \
    "rank 5 is not below" "$GPU" -pi fs -pf "$TMP/id"
LLMC_WORLD_SIZE=2 LLMC_RANK=1 expect_error "ranks without MPI need to know their GPU" \
    "which GPU is rank 1's? Give -pg" "$GPU" -pi fs -pf "$TMP/id"
# llm.c's -pn, -pr, -pg number the ranks instead, and win over the environment
expect_error "-pn without -pr is refused" "-pn (ranks) and -pr (this rank) go together" "$GPU" -pi fs -pf "$TMP/id" -pn 2
expect_error "-pr outside -pn is refused" "rank 5 is not below the number of ranks 2" \
    "$GPU" -pi fs -pf "$TMP/id" -pn 2 -pr 5
expect_error "-pn under -pi mpi is refused" "are for -pi tcp or fs" "$GPU" -pn 2 -pr 0
expect_error "-ps under -pi fs is refused" "-ps is for -pi tcp" "$GPU" -pi fs -pf "$TMP/id" -ps 127.0.0.1:1
expect_error "-pf under -pi mpi is refused" "-pf is for -pi fs" "$GPU" -pf "$TMP/id"
for bad in 127.0.0.1 127.0.0.1:0 127.0.0.1:65536 :29500 127.0.0.1:+1 a:b:1; do
    expect_error "-ps $bad is no host:port, on one rank too" "needs -ps host:port" "$GPU" -pi tcp -ps "$bad" -pn 1 -pr 0
done
if LLMC_WORLD_SIZE=2 LLMC_RANK=5 "$GPU" "${GARGS[@]}" -x 1 -pi tcp -ps 127.0.0.1:1 -pn 1 -pr 0 -pg 8 \
        > "$TMP/pn.txt" 2>&1 && grep -q '^step 1/1 | loss' "$TMP/pn.txt"; then
    pass "-pn 1 -pr 0 -pg 8 runs one rank, whatever the environment says"
else fail "-pn 1 -pr 0 -pg 8 runs one rank" "$(tail -3 "$TMP/pn.txt")"; fi
compare_gpu() {  # NAME A.txt B.txt
    local why
    if why=$(bash scripts/compare_losses.sh "$2" "$3"); then pass "$1"; else fail "$1" "$why"; fi
}
"$GPU" "${GARGS[@]}" > "$TMP/g1.txt" 2>&1 || fail "emulated GPU, one rank" "$(tail -3 "$TMP/g1.txt")"
for z in 0 1 2 3; do
    mpi 2 "$GPU" "${GARGS[@]}" -z $z -n 3 -s 3 -g 4 -o "$TMP/g2z$z" > "$TMP/g2z$z.txt" 2>&1 || fail "emulated GPU, 2 ranks, ZeRO-$z" "$(tail -3 "$TMP/g2z$z.txt")"
    compare_gpu "emulated GPU trainer: 2 ranks, ZeRO-$z = one GPU" "$TMP/g1.txt" "$TMP/g2z$z.txt"
done
grep -q '^wte in 3 vocabulary chunks of 256 rows at ZeRO-3' "$TMP/g2z3.txt" && ! grep -q 'vocabulary chunks' "$TMP/g2z1.txt" \
    && pass "emulated GPU trainer: ZeRO-2/3 move wte in vocabulary chunks (3 of 256 rows here), ZeRO-0/1 whole" \
    || fail "emulated GPU trainer: wte in vocabulary chunks at ZeRO-3" "$(grep -m1 'vocabulary' "$TMP/g2z3.txt")"
# 3 ranks: 64 channels do not split in 3; slices rounded up to ZERO_ALIGN
# elements keep every tensor in a bucket slot aligned for the matmuls
"$GPU" "${GARGS[@]}" -d 96 -m 3 > "$TMP/g1d96.txt" 2>&1   # (-m 3: the same val batches on 3 ranks)
mpi 3 "$GPU" "${GARGS[@]}" -d 96 -m 3 -z 3 > "$TMP/g3z3.txt" 2>&1 || fail "emulated GPU, 3 ranks, ZeRO-3" "$(tail -3 "$TMP/g3z3.txt")"
compare_gpu "emulated GPU trainer: 3 ranks (64 channels do not split in 3), ZeRO-3 = one GPU" "$TMP/g1d96.txt" "$TMP/g3z3.txt"
# the waits between the compute stream (the legacy one) and the collectives'
# stream: with either held back until something waits for it (dev/emu's
# EMU_LATE_STREAM: 0 compute, 1 communication), every stage gives the same
# bits. ZeRO-2/3 on 4 layers, so that the bucket slots are reused within a
# step (removing any one of the trainer's waits between the streams fails this)
$PY tests/make_model.py "$TMP/g4.bin" 4 2 64 600 64 5
steps_only() { grep '^step' "$1" | sed 's/ | [0-9.]* ms .*//'; }
for z in 0 1 2 3; do
    args=("${GARGS[@]}" -z $z -n 3 -s 3 -g 4) ref=$TMP/g2z$z.txt
    if [ $z -ge 2 ]; then
        args=(-e "$TMP/g4.bin" "${args[@]:2}") ref=$TMP/g4z$z.txt
        mpi 2 "$GPU" "${args[@]}" -o "$TMP/g4z$z" > "$ref" 2>&1
    fi
    for late in 0 1; do
        out=$TMP/late${late}z$z.txt
        EMU_LATE_STREAM=$late mpi 2 "$GPU" "${args[@]}" -o "$TMP/late${late}z$z" > "$out" 2>&1
        if [ -n "$(steps_only "$ref")" ] && [ "$(steps_only "$ref")" = "$(steps_only "$out")" ]; then
            pass "emulated GPU trainer: 2 ranks, ZeRO-$z, $([ $late = 0 ] && echo compute || echo communication) stream late: the same bits"
        else fail "emulated GPU trainer: 2 ranks, ZeRO-$z, stream $late late" \
            "$(diff <(steps_only "$ref") <(steps_only "$out") | head -4; tail -2 "$out")"; fi
    done
done
# both streams lagging by chance, in turns (EMU_LATE_STREAM=random, seed 1):
# ZeRO-3 still gives the same bits (without the gathers' wait, or the
# collectives' wait for compute, it does not)
EMU_LATE_STREAM=random EMU_SEED=1 mpi 2 "$GPU" -e "$TMP/g4.bin" "${GARGS[@]:2}" -z 3 -n 3 -s 3 -g 4 \
    -o "$TMP/random_z3" > "$TMP/random_z3.txt" 2>&1
if [ -n "$(steps_only "$TMP/g4z3.txt")" ] && [ "$(steps_only "$TMP/g4z3.txt")" = "$(steps_only "$TMP/random_z3.txt")" ]; then
    pass "emulated GPU trainer: 2 ranks, ZeRO-3, both streams late by chance: the same bits"
else fail "emulated GPU trainer: 2 ranks, ZeRO-3, both streams late by chance" \
    "$(diff <(steps_only "$TMP/g4z3.txt") <(steps_only "$TMP/random_z3.txt") | head -4; tail -2 "$TMP/random_z3.txt")"; fi
# the same under AddressSanitizer: ZeRO-3's slots, gathers and reduce-scatters
# stay in bounds (leak checks off: OpenMPI's plugins leave allocations at exit;
# the one-process ASan runs of t_gpu_train.sh check our leaks)
make -s build/emu/asan/train_gpt2cu >/dev/null 2>&1
if ASAN_OPTIONS=detect_leaks=0 mpi 2 build/emu/asan/train_gpt2cu "${GARGS[@]}" -x 2 -v 2 -s 2 -g 2 -z 3 -n 2 \
        -o "$TMP/gasan" > "$TMP/gasan.txt" 2>&1 && ! grep -q 'ERROR: AddressSanitizer' "$TMP/gasan.txt" \
        && [ -f "$TMP/gasan/model_00000002.bin" ]; then
    pass "emulated GPU trainer under ASan: 2 ranks, ZeRO-3, samples and a checkpoint, no memory errors"
else fail "emulated GPU trainer under ASan: 2 ranks, ZeRO-3" "$(grep -m3 -i 'error' "$TMP/gasan.txt")"; fi
# the race check (build/emu/tsan; dev/emu/emu_races.h): at
# ZeRO-2 and 3 the backward's reductions and ZeRO-3's gathers run on the
# communication stream beside the compute stream (with -gr 1 through one
# fp32 buffer, with -w 1 into master weights); the waits between them
# order every access, in the default order where all values are right
# anyway (with the gathers' wait removed, or at ZeRO-2 the slots' wait, it
# reported a race), and the plain build's bits. With every wait dropped
# (EMU_DROP_WAITS=1) the plain build still gives those bits, and the race
# check reports a race
make -s build/emu/tsan/train_gpt2cu >/dev/null 2>&1
race_free() {  # LABEL NAME ARGS...: the race check's run = the plain build's
    local label=$1 name=$2; shift 2
    mpi 2 "$GPU" "$@" -o "$TMP/plain_$name" > "$TMP/plain_$name.txt" 2>&1
    if mpi 2 build/emu/tsan/train_gpt2cu "$@" -o "$TMP/tsan_$name" > "$TMP/tsan_$name.txt" 2>&1 \
            && [ -n "$(steps_only "$TMP/plain_$name.txt")" ] \
            && [ "$(steps_only "$TMP/plain_$name.txt")" = "$(steps_only "$TMP/tsan_$name.txt")" ]; then
        pass "emulated GPU trainer under the race check: 2 ranks, $label: no race between the streams, the same bits"
    else fail "emulated GPU trainer under the race check: 2 ranks, $label" \
        "$(grep -m4 -E 'WARNING|^error|^step' "$TMP/tsan_$name.txt")"; fi
}
args=(-e "$TMP/g4.bin" "${GARGS[@]:2}" -x 2)
race_free ZeRO-2 z2 "${args[@]}" -z 2
race_free "ZeRO-3 -gr 1 -w 1" z3_gr_w "${args[@]}" -z 3 -gr 1 -w 1
race_free ZeRO-3 z3 "${args[@]}" -z 3
args+=(-z 3)
EMU_DROP_WAITS=1 mpi 2 "$GPU" "${args[@]}" -o "$TMP/nowait_z3" > "$TMP/nowait_z3.txt" 2>&1
if [ -n "$(steps_only "$TMP/plain_z3.txt")" ] && [ "$(steps_only "$TMP/plain_z3.txt")" = "$(steps_only "$TMP/nowait_z3.txt")" ]
then pass "emulated GPU trainer: 2 ranks, ZeRO-3, its waits dropped: the same bits in the default order"
else fail "emulated GPU trainer: 2 ranks, ZeRO-3, its waits dropped" "$(diff <(steps_only "$TMP/plain_z3.txt") \
    <(steps_only "$TMP/nowait_z3.txt") | head -4)"; fi
if ! EMU_DROP_WAITS=1 mpi 2 build/emu/tsan/train_gpt2cu "${args[@]}" -o "$TMP/tsan_nowait" > "$TMP/tsan_nowait.txt" 2>&1 \
        && grep -q 'ThreadSanitizer: data race' "$TMP/tsan_nowait.txt" && grep -q '^error: emu: ' "$TMP/tsan_nowait.txt"
then pass "emulated GPU trainer under the race check: 2 ranks, ZeRO-3, its waits dropped: a race reported"
else fail "emulated GPU trainer under the race check: ZeRO-3 without its waits" "$(tail -3 "$TMP/tsan_nowait.txt")"; fi
"$GPU" "${GARGS[@]}" -z 3 > "$TMP/g1z3.txt" 2>&1
compare_gpu "emulated GPU trainer: ZeRO-3 on one GPU = ZeRO-0" "$TMP/g1.txt" "$TMP/g1z3.txt"
# -w 1: fp32 master weights, sharded like the moments (ZeRO-1+); a resume of
# a 2-rank ZeRO-3 run on 2 ranks is exact (the bf16 weights redone from the
# master shards as the last step's stochastic rounding made them)
"$GPU" "${GARGS[@]}" -w 1 > "$TMP/gw1.txt" 2>&1
for z in 1 3; do
    mpi 2 "$GPU" "${GARGS[@]}" -w 1 -z $z -n 3 -o "$TMP/gw2z$z" > "$TMP/gw2z$z.txt" 2>&1
    compare_gpu "emulated GPU trainer: -w 1 on 2 ranks, ZeRO-$z = one GPU" "$TMP/gw1.txt" "$TMP/gw2z$z.txt"
done
# -gr 1: the gradients summed over the ranks in fp32 and rounded to bf16
# once (ZeRO-0: the all-reduce in chunks; ZeRO-3: per bucket, then added
# into the bf16 shard): still one GPU's training
for z in 0 3; do
    mpi 2 "$GPU" "${GARGS[@]}" -gr 1 -z $z > "$TMP/gf2z$z.txt" 2>&1
    if grep -q '^gradients summed over the ranks in fp32 (-gr 1)' "$TMP/gf2z$z.txt"; then
        compare_gpu "emulated GPU trainer: -gr 1 (fp32 sums) on 2 ranks, ZeRO-$z = one GPU" "$TMP/g1.txt" "$TMP/gf2z$z.txt"
    else fail "emulated GPU trainer: -gr 1, ZeRO-$z" "no fp32 buffers: $(tail -3 "$TMP/gf2z$z.txt")"; fi
done
cp -r "$TMP/gw2z3" "$TMP/gw_resume" && rm "$TMP/gw_resume"/*00000006*
mpi 2 "$GPU" "${GARGS[@]}" -w 1 -z 3 -y 1 -o "$TMP/gw_resume" > "$TMP/gw_resume.txt" 2>&1
if cmp -s "$TMP/gw2z3/model_00000006.bin" "$TMP/gw_resume/model_00000006.bin"; then
    pass "emulated GPU trainer: -w 1, ZeRO-3, 2 ranks: resume from step 3 gives the same bits at step 6"
else fail "emulated GPU trainer: -w 1, ZeRO-3 resume is exact" "$(grep -m2 -i 'error\|resum' "$TMP/gw_resume.txt")"; fi
mpi 2 "$GPU" "${GARGS[@]}" -d 32 > "$TMP/g2half.txt" 2>&1
if bash scripts/compare_losses.sh "$TMP/g1.txt" "$TMP/g2half.txt" > /dev/null; then
    fail "the GPU comparison fails on a different total batch" "it passed"
else pass "the GPU comparison fails on a different total batch"; fi
rm "$TMP/g2z3"/*00000006*
"$GPU" "${GARGS[@]}" -y 1 -o "$TMP/g2z3" > "$TMP/g_resumed.txt" 2>&1
sed -n '/^step 3\/6 | val/,$p' "$TMP/g1.txt" > "$TMP/g1_tail.txt"  # from the resumed run's first line
if grep -q 'written on 2 ranks' "$TMP/g_resumed.txt"; then
    compare_gpu "emulated GPU trainer: a 2-rank ZeRO-3 checkpoint resumes on one GPU" "$TMP/g1_tail.txt" "$TMP/g_resumed.txt"
else fail "emulated GPU trainer: a 2-rank checkpoint resumes on one GPU" "$(grep -m2 -i 'error\|resum' "$TMP/g_resumed.txt")"; fi

# --- a model too big for one GPU trains on two with ZeRO-3: a rank allocates
# only what it keeps (no whole model first), and its plan is what it
# allocates. The emulated device gets EMU_DEVICE_MIB: just what a ZeRO-3 rank
# of 2 needs (8 layers, so the bucket slots are small beside the shards).
$PY tests/make_model.py "$TMP/g8.bin" 8 2 128 600 64 5
MARGS=(-e "$TMP/g8.bin" -i "$TMP/gtr_*.bin" -j "" -b 2 -t 16 -d 64 -x 2 -l 1e-3 -g 0 -tz "")
EMU_REPORT_MEMORY=1 "$GPU" "${MARGS[@]}" > "$TMP/mem_g1.txt" 2>&1
EMU_REPORT_MEMORY=1 mpi 2 "$GPU" "${MARGS[@]}" -z 3 > "$TMP/mem_g3.txt" 2>&1
peak() { sed -n 's/^emu: device memory peak \([0-9]*\) bytes$/\1/p' "$1" | sort -n | tail -1; }
plan() { sed -n 's/^memory: .* = \([0-9.]*\) GiB.* GiB free$/\1/p' "$1" | head -1; }
for f in mem_g1 mem_g3; do
    p=$(peak "$TMP/$f.txt"); q=$(plan "$TMP/$f.txt")
    if [ -n "$p" ] && [ -n "$q" ] && awk -v p="$p" -v q="$q" 'BEGIN{d=p/2^30-q; exit !(d<0.0006 && d>-0.0006)}'; then
        pass "emulated GPU trainer ($f): the memory plan, $q GiB, is what it allocates ($p bytes at most)"
    else fail "emulated GPU trainer ($f): the memory plan is what it allocates" "plan '$q' GiB, peak '$p' bytes"; fi
done
# ZeRO-1 on 2 ranks: half the AdamW moments (8 layers: enough to show in the plan's GiB)
mpi 2 "$GPU" "${MARGS[@]}" -z 1 > "$TMP/mem_z1.txt" 2>&1
moments() { sed -n 's/^memory: .* AdamW m,v \([0-9.]*\) (fp32) .*/\1/p' "$1" | head -1; }
m1=$(moments "$TMP/mem_g1.txt"); m2=$(moments "$TMP/mem_z1.txt")
if [ -n "$m1" ] && [ -n "$m2" ] && grep -q "(this rank's at ZeRO-1 on 2 ranks; one GPU: " "$TMP/mem_z1.txt" \
        && awk -v a="$m1" -v b="$m2" 'BEGIN{exit !(a > 0.005 && b - a / 2 < 0.0011 && a / 2 - b < 0.0011)}'; then
    pass "emulated GPU trainer: ZeRO-1 on 2 ranks holds half the AdamW moments ($m2 of $m1 GiB), and says so"
else fail "emulated GPU trainer: ZeRO-1 holds half the AdamW moments" "one GPU '$m1', ZeRO-1 '$m2' GiB"; fi
p1=$(peak "$TMP/mem_g1.txt"); p3=$(peak "$TMP/mem_g3.txt")
mib=$(( (${p3:-0} + 1048575) / 1048576 ))
if [ "${p1:-0}" -gt $((mib * 1048576)) ]; then
    EMU_DEVICE_MIB=$mib mpi 2 "$GPU" "${MARGS[@]}" -z 3 > "$TMP/mem_fit.txt" 2>&1 \
        || fail "ZeRO-3 on 2 emulated GPUs of $mib MiB" "$(grep -m2 error "$TMP/mem_fit.txt")"
    compare_gpu "a model too big for one GPU of $mib MiB trains on 2 with ZeRO-3" "$TMP/mem_g3.txt" "$TMP/mem_fit.txt"
    EMU_DEVICE_MIB=$mib expect_error "one GPU of $mib MiB: refused at start, pointing to -z 3" "spread it over more GPUs with -z 3" \
        "$GPU" "${MARGS[@]}"
    EMU_DEVICE_MIB=$mib expect_error "2 GPUs of $mib MiB at ZeRO-0: refused at start" "the model needs" \
        mpirun --oversubscribe -np 2 "$GPU" "${MARGS[@]}" -z 0
else fail "ZeRO-3 on 2 ranks allocates less than one GPU" "peaks: one GPU '$p1', ZeRO-3 rank '$p3' bytes"; fi
EMU_DEVICE_MIB=0 expect_error "EMU_DEVICE_MIB=0 is refused" "EMU_DEVICE_MIB=0" "$GPU" "${MARGS[@]}"
