#!/usr/bin/env bash
# tests/t_cudnn.sh: cuDNN's fused attention (llmc/attention_cudnn.cuh,
# USE_CUDNN=1) without a GPU: nvcc builds the trainer, its PyTorch test and
# the attention check with it (make cudnn), and cuDNN's engines take our
# forward and backward graphs for an H100 and an A100 at every shape the
# check uses (dev/cuda/cudnn_attention_graphs.c: cuDNN picks engines and
# compiles plans for a device described in dev/cuda/h100.json, a100.json).
# Whether the results are right needs the GPU: scripts/gpu_validate.sh
# runs build/cudnn/*.
source "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

if ! out=$(make -s -j"$(nproc)" cudnn 2>&1); then
    fail cudnn_builds "make cudnn failed"
    printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
    exit 0
fi
pass "nvcc builds build/cudnn/train_gpt2cu, test_gpt2cu and attention with cuDNN's attention"
if make -s -n train_gpt2cu USE_CUDNN=1 | grep -q -- '-DUSE_CUDNN'; then
    pass "make train_gpt2cu USE_CUDNN=1 builds with cuDNN"
else fail "make train_gpt2cu USE_CUDNN=1 builds with cuDNN" "no -DUSE_CUDNN in: $(make -s -n train_gpt2cu USE_CUDNN=1)"; fi

# without a GPU driver, cuDNN compiles through the CUDA toolkit's stub libcuda
LIBS=$(make -s cuda-dir | tail -n 1)/lib64   # after make's OpenMP/MPI lines
if ! ldconfig -p | grep -q 'libcuda.so.1 '; then
    mkdir -p "$TMP/stub" && ln -sf "$(readlink -f "$LIBS/stubs/libcuda.so")" "$TMP/stub/libcuda.so.1"
    LIBS=$TMP/stub:$LIBS
fi
for gpu in h100 a100; do   # Hopper and Ampere: the two architectures nvcc builds for
    out=$(LD_LIBRARY_PATH=$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} timeout 300 build/cudnn/attention_graphs "dev/cuda/$gpu.json" 2>&1)
    rc=$?
    printf '%s\n' "$out" | sed -n "s/^ok   /PASS cuDNN attention graphs, $gpu: /p; s/^FAIL /FAIL cuDNN attention graphs, $gpu: /p"
    [ $rc -eq 0 ] || printf '%s\n' "$out" | grep -q '^FAIL' || fail "cuDNN attention graphs, $gpu" "exit $rc: $(printf '%s\n' "$out" | tail -3)"
done
# a properties file past the 8 KiB buffer is refused, not cut short into JSON cuDNN cannot parse
{ cat dev/cuda/h100.json; head -c 9000 /dev/zero | tr '\0' ' '; } > "$TMP/big.json"
expect_error "cuDNN attention graphs: a device file over 8 KiB is refused" "over 8191 bytes" \
    build/cudnn/attention_graphs "$TMP/big.json"
