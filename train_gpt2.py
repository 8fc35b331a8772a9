"""
train_gpt2.py: the PyTorch reference GPT-2, the test oracle of the C trainers.

It is not needed to train: train_gpt2 (C) and train_gpt2cu (CUDA) never call
it. The tests run it to write the files they compare against:

  reference  random init from a seed, then writes DIR/model_fp32.bin (v3),
             DIR/model_bf16.bin (v5) with those initial weights,
             DIR/debug_state.bin (x, y, logits, loss and every raw, unclipped
             gradient of the first step), DIR/steps.txt (`i loss grad_norm`
             of `--steps` AdamW steps on that same batch) and
             DIR/steps_bf16.txt (the same steps with the forward autocast to
             bf16: how far PyTorch itself drifts in bf16, which sets the bf16
             GPU trainer's tolerance on the steps; --no_bf16 leaves it out).
             An earlier run's files in DIR are removed first and the model
             files are renamed into place last: where they are, every file
             in DIR is from one finished run.
  train      trains a checkpoint on a token shard (checked as the C loader
             checks it: checksum, finite weights), to compare loss curves.
  bench      times full training steps of PyTorch on the CPU, for `make bench`.

The model is GPT-2 written out plainly in fp32: token + position embedding,
L pre-LayerNorm blocks (causal self-attention spelled out as
softmax(q k^T / sqrt(hs) + mask) v, then an MLP with tanh-GELU), a final
LayerNorm and an output head tied to wte. The parameters are held as the 16
tensors of the checkpoint, each layer stacked along a leading L axis, so the
file order and the order in which the initialisation draws random numbers are
both explicit. The vocabulary is padded from V to Vp rows in wte (zeros); the
model reads only the first V rows, so the padding never reaches the loss and
its gradient is zero.

Constraints: torch 1.13 (CPU) and numpy; every file is little-endian with a
256 x int32 header (the formats are in llmc/formats.h and the README). Bad
flags or files end with one "error: ..." line on stderr and exit status 1.
"""

import argparse
import contextlib
import glob
import math
import os
import re
import stat
import statistics
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# -----------------------------------------------------------------------------
# file formats (the same numbers as llmc/formats.h)

HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MODEL_MAGIC = 20240326
MODEL_VERSION_FP32 = 3
MODEL_VERSION_BF16 = 5
DEBUG_STATE_MAGIC = 20240327
DEBUG_STATE_VERSION = 2
SHARD_MAGIC = 20240520
SHARD_VERSION = 1
# model files' header slot 8 (llmc/checkpoint.h): 0 no checksum; CRC-32 in
# slot 9 of the tensor bytes, or of header slots 0..7 and then the tensor bytes
CHECKSUM_CRC32 = 1
CHECKSUM_CRC32_CONFIG = 2
MODEL_CHECKSUMMED_INTS = 8
# what llmc/debug_state.h reads back: at most MAX_REF_STEPS lines of
# steps.txt, a batch of at most MAX_B rows (train and bench take the same
# limit: a CPU step of PyTorch at that batch takes minutes)
MAX_REF_STEPS = 100
MAX_B = 1024

# GPT-2's fixed sizes
MAX_SEQ_LEN = 1024
VOCAB_SIZE = 50257
PADDED_VOCAB_SIZE = 50304  # V rounded up to a multiple of 128
LAYERNORM_EPS = 1e-5
INIT_STD = 0.02

# the checkpoint order of the 16 parameter tensors
PARAM_NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
               "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
# the 2-D weight matrices (per layer for the stacked ones): AdamW decays only these
DECAYED = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}
# the tensors without a leading L axis
UNSTACKED = {"wte", "wpe", "lnfw", "lnfb"}


class InputError(Exception):
    """A bad flag or file: reported as one 'error: ...' line, exit status 1."""


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


# -----------------------------------------------------------------------------
# model configuration

class GPTConfig:
    def __init__(self, L, NH, C, max_seq_len=MAX_SEQ_LEN, V=VOCAB_SIZE, Vp=PADDED_VOCAB_SIZE):
        self.L, self.NH, self.C = L, NH, C
        self.max_seq_len, self.V, self.Vp = max_seq_len, V, Vp

    def __str__(self):
        return (f"L={self.L} NH={self.NH} C={self.C} max_seq_len={self.max_seq_len} "
                f"V={self.V} Vp={self.Vp}")


# the GPT-2 family by depth; any other dN is L=N, NH=N, C=64*N
GPT2_SIZES = {12: (12, 12, 768), 24: (24, 16, 1024), 36: (36, 20, 1280), 48: (48, 25, 1600)}


def config_from_descriptor(desc):
    m = re.fullmatch(r"d([1-9][0-9]*)", desc)
    if not m or int(m.group(1)) > 64:
        raise InputError(f"--model '{desc}' is not a depth descriptor d1..d64 (e.g. d12)")
    n = int(m.group(1))
    L, NH, C = GPT2_SIZES.get(n, (n, n, 64 * n))
    return GPTConfig(L, NH, C)


def param_shapes(cfg):
    """Shapes of the 16 tensors in checkpoint order, as stored in files."""
    L, C, Vp, maxT = cfg.L, cfg.C, cfg.Vp, cfg.max_seq_len
    return {
        "wte": (Vp, C), "wpe": (maxT, C),
        "ln1w": (L, C), "ln1b": (L, C),
        "qkvw": (L, 3 * C, C), "qkvb": (L, 3 * C),
        "attprojw": (L, C, C), "attprojb": (L, C),
        "ln2w": (L, C), "ln2b": (L, C),
        "fcw": (L, 4 * C, C), "fcb": (L, 4 * C),
        "fcprojw": (L, C, 4 * C), "fcprojb": (L, C),
        "lnfw": (C,), "lnfb": (C,),
    }


def num_params(cfg):
    return sum(math.prod(s) for s in param_shapes(cfg).values())


# -----------------------------------------------------------------------------
# the model

def normal_fill(mt, shape, std):
    """normal(0, std) samples of `shape`, by llmc/rand.h's normal_fill recipe.

    Uniforms u = (32-bit output >> 8) * 2^-24; per pair: u1 = 1 - u (first),
    u2 = u (second), r = sqrt(-2 ln u1), values r cos(2 pi u2) std and
    r sin(2 pi u2) std, in float64, rounded to float32 once; an odd count
    drops the last sine.
    """
    n = int(np.prod(shape))
    pairs = (n + 1) // 2
    raw = mt.randint(0, 2**32, size=2 * pairs, dtype=np.uint64) >> np.uint64(8)
    u = raw.astype(np.float64) * (1.0 / 16777216.0)
    u1, u2 = 1.0 - u[0::2], u[1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    theta = 6.283185307179586 * u2
    out = np.empty(2 * pairs, dtype=np.float64)
    out[0::2] = r * np.cos(theta) * std
    out[1::2] = r * np.sin(theta) * std
    return torch.from_numpy(out[:n].astype(np.float32).reshape(shape))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        for name, shape in param_shapes(cfg).items():
            setattr(self, name, nn.Parameter(torch.zeros(shape, dtype=torch.float32)))

    def tensors(self):
        """The 16 parameters in checkpoint order."""
        return [getattr(self, name) for name in PARAM_NAMES]

    @torch.no_grad()
    def init_weights(self, seed):
        """Random init from `seed`, drawn in a fixed order the C side repeats.

        One Mersenne Twister (llmc/rand.h); the tensors in checkpoint order; a
        stacked tensor one layer slice at a time. LayerNorm weights are one,
        biases zero (no draws). The residual projections get std
        0.02 / sqrt(2 L). Not torch's normal_: its vectorised Box-Muller uses
        its own log/sincos polynomials, which C cannot repeat bit for bit.
        """
        cfg = self.cfg
        mt = np.random.RandomState(seed)  # legacy seeding = MT19937 init_genrand
        proj_std = INIT_STD / math.sqrt(2 * cfg.L)
        for name, t in zip(PARAM_NAMES, self.tensors()):
            t.zero_()
            if name == "wte":
                t[:cfg.V] = normal_fill(mt, t[:cfg.V].shape, INIT_STD)  # padding rows stay 0
            elif name == "wpe":
                t[:] = normal_fill(mt, t.shape, INIT_STD)
            elif name in ("qkvw", "fcw", "attprojw", "fcprojw"):
                std = proj_std if name in ("attprojw", "fcprojw") else INIT_STD
                for l in range(cfg.L):
                    t[l] = normal_fill(mt, t[l].shape, std)
            elif name in ("ln1w", "ln2w", "lnfw"):
                t.fill_(1.0)
            # every bias stays zero

    def attention(self, x, w, l, mask):
        """Causal self-attention of layer l. x (B,T,C) -> (B,T,C)."""
        B, T, C = x.shape
        NH = self.cfg.NH
        hs = C // NH
        qkv = F.linear(x, w["qkvw"][l], w["qkvb"][l])  # (B,T,3C)
        q, k, v = qkv.split(C, dim=2)  # each (B,T,C), head h is channels [h*hs, (h+1)*hs)
        q = q.view(B, T, NH, hs).transpose(1, 2)  # (B,NH,T,hs)
        k = k.view(B, T, NH, hs).transpose(1, 2)  # (B,NH,T,hs)
        v = v.view(B, T, NH, hs).transpose(1, 2)  # (B,NH,T,hs)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B,NH,T,T)
        att = att.masked_fill(~mask, float("-inf"))  # position t sees only 0..t
        att = F.softmax(att, dim=-1)  # (B,NH,T,T)
        y = att @ v  # (B,NH,T,hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return F.linear(y, w["attprojw"][l], w["attprojb"][l])  # (B,T,C)

    def forward(self, idx, targets):
        """idx, targets (B,T) int64 -> logits (B,T,V), mean cross-entropy loss."""
        cfg = self.cfg
        B, T = idx.shape
        C, V = cfg.C, cfg.V
        mask = torch.ones(T, T, dtype=torch.bool).tril()  # (T,T)
        # the per-layer slices of the stacked tensors, w[name][l]. unbind() rather
        # than indexing t[l] once per layer: its backward assembles the stacked
        # gradient in one piece instead of adding L full-size zero-padded ones
        w = {n: getattr(self, n).unbind(0) for n in PARAM_NAMES if n not in UNSTACKED}
        x = F.embedding(idx, self.wte) + self.wpe[:T]  # (B,T,C)
        for l in range(cfg.L):
            h = F.layer_norm(x, (C,), w["ln1w"][l], w["ln1b"][l], LAYERNORM_EPS)
            x = x + self.attention(h, w, l, mask)  # (B,T,C)
            h = F.layer_norm(x, (C,), w["ln2w"][l], w["ln2b"][l], LAYERNORM_EPS)
            h = F.linear(h, w["fcw"][l], w["fcb"][l])  # (B,T,4C)
            h = F.gelu(h, approximate="tanh")
            x = x + F.linear(h, w["fcprojw"][l], w["fcprojb"][l])  # (B,T,C)
        x = F.layer_norm(x, (C,), self.lnfw, self.lnfb, LAYERNORM_EPS)
        logits = x @ self.wte[:V].t()  # (B,T,V): tied head, real tokens only
        loss = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))
        return logits, loss


def make_optimizer(model, args):
    """torch's AdamW; weight decay on the 2-D weight matrices only."""
    decay = [getattr(model, n) for n in PARAM_NAMES if n in DECAYED]
    no_decay = [getattr(model, n) for n in PARAM_NAMES if n not in DECAYED]
    groups = [{"params": decay, "weight_decay": args.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps,
                             foreach=False)


@torch.no_grad()
def clip_grad_norm(params, max_norm):
    """torch.nn.utils.clip_grad_norm_ (L2), with the norm summed in float64.

    torch 1.13's fp32 norm on the CPU accumulates without cascade summation
    and comes out low on large tensors (pytorch/pytorch#68326): 0.4% low for
    the 124M model's wte gradient. The reference must be the exact value, so
    the sum of squares is done in float64; the result is rounded to fp32 and
    then used exactly as torch uses it. Returns the pre-clip norm (fp32 tensor).
    """
    grads = [p.grad for p in params if p.grad is not None]
    # in chunks of 1M, so the float64 copy stays small (wte's gradient is 39M at d12)
    chunks = [c for g in grads for c in g.view(-1).split(1 << 20)]
    sumsq = sum(c.double().pow_(2).sum().item() for c in chunks)
    total_norm = torch.tensor(math.sqrt(sumsq), dtype=torch.float32)
    clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)  # as torch computes it
    for g in grads:
        g.mul_(clip_coef)
    return total_norm


def train_step(model, opt, x, y, grad_clip, inspect=None, clip=clip_grad_norm, bf16=False):
    """forward, backward, clip, AdamW update. Returns (loss, pre-clip grad norm).

    `inspect(logits, loss)`, if given, runs after backward and before the
    clip, while the gradients are still the raw ones. bf16: the forward (and
    so its backward) autocast to bf16; weights and optimizer stay fp32.
    """
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits, loss = model(x, y)
    loss.backward()
    if inspect is not None:
        inspect(logits, loss)
    norm = clip(model.tensors(), grad_clip)
    opt.step()
    loss, norm = loss.item(), norm.item()
    if not (math.isfinite(loss) and math.isfinite(norm)):  # every later step would be NaN
        raise InputError(f"loss {loss}, gradient norm {norm}: not finite, the training "
                         f"diverged (try a lower --lr)")
    return loss, norm


def step_line(i, loss, norm):
    # %.9g prints a float32 so that it reads back to the same float32
    return "%d %.9g %.9g" % (i, loss, norm)


def steps_text(lines):
    return "".join(line + "\n" for line in lines).encode()


# -----------------------------------------------------------------------------
# writing and reading files

def write_temp(path, chunks):
    """Writes the byte strings `chunks` to path.tmp and fsyncs it; returns
    path.tmp, for publish(). On any failure path.tmp is gone again."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        discard(tmp)
        if isinstance(e, OSError):
            raise InputError(f"cannot write '{path}': {e.strerror}")
        raise
    return tmp


def publish(tmp, path):
    """Renames a finished path.tmp over path (removes it if that fails)."""
    try:
        os.replace(tmp, path)
    except OSError as e:
        discard(tmp)
        raise InputError(f"cannot write '{path}': {e.strerror}")


def discard(path):
    with contextlib.suppress(OSError):  # (absent, or a folder: not ours to remove)
        os.remove(path)


def write_atomically(path, chunks):
    """path gets either all of `chunks` or keeps what it held: a crash or an
    error never leaves it half-written."""
    publish(write_temp(path, chunks), path)


def regular_file(path, what):
    """Checks that path is a regular file before it is opened: open() of a
    FIFO would wait for a writer forever."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise InputError(f"{what} '{path}': {e.strerror}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{what} '{path}' is not a regular file")


def header_bytes(*fields):
    h = np.zeros(HEADER_INTS, dtype="<i4")
    h[:len(fields)] = fields
    return h.tobytes()


def to_bf16_bits(t):
    """fp32 tensor -> its bfloat16 bits as little-endian uint16 bytes (nearest-even)."""
    return t.detach().to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()


def model_chunks(model, version):
    """The bytes of a model file (no checksum: slot 8 = 0) of model's weights."""
    cfg = model.cfg
    chunks = [header_bytes(MODEL_MAGIC, version, cfg.max_seq_len, cfg.V, cfg.L, cfg.NH, cfg.C,
                           cfg.Vp)]
    for t in model.tensors():  # wte is (Vp,C) already, with zero padding rows
        if version == MODEL_VERSION_BF16:
            chunks.append(to_bf16_bits(t))
        else:
            chunks.append(t.detach().numpy().astype("<f4").tobytes())
    return chunks


def write_debug_state(path, x, y, logits, loss, grads):
    """x, y (B,T); logits (B,T,V); loss scalar; grads in checkpoint order."""
    B, T = x.shape
    chunks = [header_bytes(DEBUG_STATE_MAGIC, DEBUG_STATE_VERSION, B, T),
              x.numpy().astype("<i4").tobytes(),
              y.numpy().astype("<i4").tobytes(),
              logits.detach().numpy().astype("<f4").tobytes(),
              np.array([loss.item()], dtype="<f4").tobytes()]
    chunks += [g.numpy().astype("<f4").tobytes() for g in grads]
    write_atomically(path, chunks)


def read_header(f, path, kind):
    raw = f.read(HEADER_BYTES)
    if len(raw) < HEADER_BYTES:
        raise InputError(f"{kind} '{path}' is truncated: {len(raw)} bytes, shorter than its "
                         f"{HEADER_BYTES}-byte header")
    return np.frombuffer(raw, dtype="<i4")


def load_model(path):
    """Reads a v3 (fp32) or v5 (bf16) checkpoint into a GPT in fp32, with the
    checks of llmc/checkpoint.h's reader: checksum, finite weights."""
    kind = "model checkpoint"
    regular_file(path, "--init")
    with open(path, "rb") as f:
        h = read_header(f, path, kind)
        if h[0] != MODEL_MAGIC:
            raise InputError(f"'{path}' is not a {kind} file: magic {h[0]}, expected {MODEL_MAGIC}")
        version = int(h[1])
        if version not in (MODEL_VERSION_FP32, MODEL_VERSION_BF16):
            raise InputError(f"{kind} '{path}' has version {version}, expected "
                             f"{MODEL_VERSION_FP32} (fp32) or {MODEL_VERSION_BF16} (bf16)")
        maxT, V, L, NH, C, Vp = (int(v) for v in h[2:8])
        if min(maxT, V, L, NH, C) < 1 or Vp < V or C % NH != 0:
            raise InputError(f"{kind} '{path}' has an invalid shape: max_seq_len={maxT} V={V} "
                             f"L={L} NH={NH} C={C} Vp={Vp} (need all >= 1, Vp >= V, "
                             f"C divisible by NH)")
        checksum = int(h[8])
        if checksum not in (0, CHECKSUM_CRC32, CHECKSUM_CRC32_CONFIG):
            raise InputError(f"{kind} '{path}': unknown checksum kind {checksum} in header "
                             f"slot 8 (0 none, {CHECKSUM_CRC32}, {CHECKSUM_CRC32_CONFIG})")
        cfg = GPTConfig(L, NH, C, max_seq_len=maxT, V=V, Vp=Vp)
        n = num_params(cfg)
        elem = 4 if version == MODEL_VERSION_FP32 else 2
        expected = HEADER_BYTES + elem * n
        size = os.fstat(f.fileno()).st_size
        if size != expected:
            raise InputError(f"{kind} '{path}' has {size} bytes but its header implies "
                             f"{expected} ({n} parameters, {elem} bytes each)")
        payload = f.read(elem * n)
    if checksum:
        crc = 0 if checksum == CHECKSUM_CRC32 else zlib.crc32(h[:MODEL_CHECKSUMMED_INTS].tobytes())
        crc = zlib.crc32(payload, crc)
        if crc != int(h[9]) & 0xFFFFFFFF:
            raise InputError(f"{kind} '{path}' is corrupt: checksum {crc:08x}, header says "
                             f"{int(h[9]) & 0xFFFFFFFF:08x}")
    if version == MODEL_VERSION_FP32:
        flat = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    else:
        # bf16 is the top half of an fp32: widen by shifting the bits up
        flat = (np.frombuffer(payload, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    del payload
    finite = np.isfinite(flat)
    if not finite.all():
        raise InputError(f"{kind} '{path}': its weights hold NaN or inf "
                         f"(parameter {int(np.argmin(finite))})")
    model = GPT(cfg)
    offset = 0
    with torch.no_grad():
        for t in model.tensors():
            t.copy_(torch.from_numpy(flat[offset:offset + t.numel()]).view(t.shape))
            offset += t.numel()
    return model


def load_shard(path, V):
    """Reads a token shard: uint16 tokens, each checked to be < V."""
    kind = "token shard"
    regular_file(path, "--train_bin")
    with open(path, "rb") as f:
        h = read_header(f, path, kind)
        if h[0] != SHARD_MAGIC:
            raise InputError(f"'{path}' is not a {kind} file: magic {h[0]}, expected {SHARD_MAGIC}")
        if h[1] != SHARD_VERSION:
            raise InputError(f"{kind} '{path}' has version {h[1]}, expected {SHARD_VERSION}")
        ntok = int(h[2])
        if ntok < 0:
            raise InputError(f"{kind} '{path}' has a negative token count {ntok}")
        expected = HEADER_BYTES + 2 * ntok
        size = os.fstat(f.fileno()).st_size
        if size != expected:
            raise InputError(f"{kind} '{path}' has {size} bytes but its header implies "
                             f"{expected} ({ntok} tokens)")
        tokens = np.fromfile(f, dtype="<u2", count=ntok)
    if ntok > 0 and int(tokens.max()) >= V:
        raise InputError(f"{kind} '{path}' holds token id {int(tokens.max())}, "
                         f"not below the model's vocab_size {V}")
    return torch.from_numpy(tokens.astype(np.int64))


# -----------------------------------------------------------------------------
# subcommands

def seeded_model_and_batch(args):
    """The model initialised from args.seed, and a random batch from seed + 1."""
    cfg = config_from_descriptor(args.model)
    vocab = getattr(args, "vocab", None)
    if vocab is not None:  # a small vocabulary: cheap tests of the emulated GPU trainer
        cfg.V, cfg.Vp = vocab, (vocab + 127) // 128 * 128
    max_seq_len = getattr(args, "max_seq_len", None)
    if max_seq_len is not None:
        if args.T > max_seq_len:
            raise InputError(f"--T {args.T} is longer than --max_seq_len {max_seq_len}")
        cfg.max_seq_len = max_seq_len
    torch.set_num_threads(args.threads)
    model = GPT(cfg)
    model.init_weights(args.seed)
    g2 = torch.Generator().manual_seed(args.seed + 1)
    tokens = torch.randint(0, cfg.V, (args.B, args.T + 1), generator=g2)  # (B,T+1)
    x, y = tokens[:, :-1], tokens[:, 1:]  # (B,T) each: y is x shifted by one
    return cfg, model, x, y


REFERENCE_FILES = ["model_fp32.bin", "model_bf16.bin", "debug_state.bin", "steps.txt",
                   "steps_bf16.txt"]


def cmd_reference(args):
    if not args.out:
        raise InputError("--out is empty: want an output directory")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out '{args.out}': cannot create the directory: {e.strerror}")

    def out(name):
        return os.path.join(args.out, name)

    cfg, model, x, y = seeded_model_and_batch(args)
    # an earlier run's files go first: the GPU test reads steps_bf16.txt where
    # there is one, so a --no_bf16 or failed run must not leave old files beside new
    for name in REFERENCE_FILES:
        if os.path.lexists(out(name)):
            os.remove(out(name))
    # the checkpoints hold the initial weights, the ones the debug state is
    # computed from: written now, renamed into place last, so model files in
    # --out mean that every file there is from one finished run
    pending = []
    try:
        for name, version in [("model_fp32.bin", MODEL_VERSION_FP32),
                              ("model_bf16.bin", MODEL_VERSION_BF16)]:
            pending.append((write_temp(out(name), model_chunks(model, version)), out(name)))
        reference_steps(args, model, x, y, out)
        for tmp, path in pending:
            publish(tmp, path)
    finally:
        for tmp, _ in pending:
            discard(tmp)  # (gone already where published)
    print(f"# {args.model} ({cfg}), {num_params(cfg)} parameters (with padding): wrote "
          f"model_fp32.bin, model_bf16.bin, debug_state.bin, steps.txt"
          f"{'' if args.no_bf16 else ', steps_bf16.txt'} in {args.out}",
          file=sys.stderr)


def reference_steps(args, model, x, y, out):
    """debug_state.bin from the first step, steps.txt (and steps_bf16.txt)."""
    def save_first_step(logits, loss):
        # raw gradients, before clipping; wte's (Vp,C) with zero padding rows
        grads = [t.grad.detach().clone() for t in model.tensors()]
        write_debug_state(out("debug_state.bin"), x, y, logits, loss, grads)

    runs = [("steps.txt", False)] + ([] if args.no_bf16 else [("steps_bf16.txt", True)])
    for name, bf16 in runs:
        if bf16:  # the same steps again from the same weights, matmuls in bf16
            _, model, x, y = seeded_model_and_batch(args)
        opt = make_optimizer(model, args)
        lines = []
        for i in range(args.steps):
            inspect = save_first_step if i == 0 and not bf16 else None
            loss, norm = train_step(model, opt, x, y, args.grad_clip, inspect=inspect, bf16=bf16)
            lines.append(step_line(i, loss, norm))
            print(("bf16 " if bf16 else "") + lines[-1], flush=True)
        write_atomically(out(name), [steps_text(lines)])


def cmd_train(args):
    if args.steps_out is not None:  # checked now, not after the training
        if not args.steps_out or os.path.isdir(args.steps_out):
            raise InputError(f"--steps_out '{args.steps_out}' is not a file name")
        if not os.path.isdir(os.path.dirname(args.steps_out) or "."):
            raise InputError(f"--steps_out '{args.steps_out}': its directory does not exist")
    torch.set_num_threads(args.threads)
    model = load_model(args.init)
    cfg = model.cfg
    if args.T > cfg.max_seq_len:
        raise InputError(f"--T {args.T} exceeds the checkpoint's max_seq_len {cfg.max_seq_len}")
    shards = sorted(glob.glob(args.train_bin))
    if not shards:
        raise InputError(f"--train_bin '{args.train_bin}' matches no file")
    tokens = load_shard(shards[0], cfg.V)  # the first shard only (see --train_bin help)
    need = args.B * args.T + 1
    if tokens.numel() < need:
        raise InputError(f"token shard '{shards[0]}' has {tokens.numel()} tokens, fewer than "
                         f"the B*T+1 = {need} one batch needs")
    print(f"# {args.init} ({cfg}), {shards[0]} ({tokens.numel()} tokens)", file=sys.stderr)
    opt = make_optimizer(model, args)
    lines = []
    pos = 0
    for i in range(args.steps):
        if pos + need > tokens.numel():
            pos = 0  # the next batch would overrun the shard: start over
        buf = tokens[pos:pos + need]
        x = buf[:-1].view(args.B, args.T)  # (B,T)
        y = buf[1:].view(args.B, args.T)  # (B,T)
        pos += args.B * args.T
        loss, norm = train_step(model, opt, x, y, args.grad_clip)
        lines.append(step_line(i, loss, norm))
        print(lines[-1], flush=True)
    if args.steps_out is not None:
        write_atomically(args.steps_out, [steps_text(lines)])


def loaded_blas():
    """Paths of the BLAS libraries mapped into this process (Linux)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
    except OSError:
        return []
    return sorted(p for p in paths if "blas" in os.path.basename(p).lower())


def cmd_bench(args):
    cfg, model, x, y = seeded_model_and_batch(args)
    opt = make_optimizer(model, args)
    print(f"# {args.model} ({cfg}), B={args.B} T={args.T}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    # timed as PyTorch users run it: with torch's own (fast, fp32) clip_grad_norm_
    clip = torch.nn.utils.clip_grad_norm_
    train_step(model, opt, x, y, args.grad_clip, clip=clip)  # warm-up, not timed
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss, _ = train_step(model, opt, x, y, args.grad_clip, clip=clip)
        times.append((time.perf_counter() - t0) * 1000.0)
        print(f"step {i}: loss {loss:.6f}, {times[-1]:.1f} ms", flush=True)
    blas = loaded_blas()
    print("blas: " + (", ".join(blas) if blas else "no library named *blas* in /proc/self/maps"))
    print(f"pytorch_ms_per_step {statistics.median(times):.1f}")


# -----------------------------------------------------------------------------
# command line

class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one 'error:' line, exit 1."""

    def error(self, message):
        die(message)


def int_in(lo, hi=None):
    def parse(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{s}' is not an integer")
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(
                f"{v} is out of range, expected {lo}..{hi}" if hi is not None
                else f"{v} is out of range, expected >= {lo}")
        return v
    return parse


def float_where(test, what):
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{s}' is not a number")
        if not math.isfinite(v) or not test(v):
            raise argparse.ArgumentTypeError(f"{s} is out of range, expected {what}")
        return v
    return parse


def add_optimizer_flags(p, lr):
    p.add_argument("--lr", type=float_where(lambda v: v >= 0, ">= 0"), default=lr,
                   help=f"learning rate, constant (default {lr})")
    p.add_argument("--beta1", type=float_where(lambda v: 0 <= v < 1, "in [0, 1)"), default=0.9,
                   help="AdamW beta1 (default 0.9)")
    p.add_argument("--beta2", type=float_where(lambda v: 0 <= v < 1, "in [0, 1)"), default=0.95,
                   help="AdamW beta2 (default 0.95)")
    p.add_argument("--eps", type=float_where(lambda v: v > 0, "> 0"), default=1e-8,
                   help="AdamW epsilon (default 1e-8)")
    p.add_argument("--weight_decay", type=float_where(lambda v: v >= 0, ">= 0"), default=0.1,
                   help="AdamW weight decay of the 2-D weights (default 0.1)")
    p.add_argument("--grad_clip", type=float_where(lambda v: v > 0, "> 0"), default=1.0,
                   help="clip gradients to this global norm (default 1.0)")
    p.add_argument("--threads", type=int_in(1, 1024), default=2,
                   help="torch CPU threads (default 2)")


def build_parser():
    seed = int_in(0, 2**31 - 2)  # seed + 1 seeds the batch; both fit an int32
    model_help = ("dN: d12 = GPT-2 124M, d24 = 350M, d36 = 774M, d48 = 1558M; "
                  "other N in 1..64: L=N, NH=N, C=64*N")
    p = Parser(prog="train_gpt2.py", allow_abbrev=False,
               description="PyTorch reference GPT-2: writes the files the C tests compare against.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{reference,train,bench}")

    r = sub.add_parser("reference", allow_abbrev=False,
                       help="random init, then write model_fp32.bin, model_bf16.bin, "
                            "debug_state.bin, steps.txt, steps_bf16.txt to --out")
    r.add_argument("--out", required=True, help="output directory (created if missing)")
    r.add_argument("--model", default="d2", help=model_help + " (default d2)")
    r.add_argument("--seed", type=seed, default=1337, help="init seed; seed+1 draws the batch "
                   "(default 1337)")
    r.add_argument("--B", type=int_in(1, MAX_B), default=4,
                   help=f"batch size, 1..{MAX_B} (default 4)")
    r.add_argument("--T", type=int_in(1, MAX_SEQ_LEN), default=32,
                   help=f"sequence length, 1..{MAX_SEQ_LEN} (default 32)")
    r.add_argument("--steps", type=int_in(1, MAX_REF_STEPS), default=10,
                   help=f"AdamW steps on the one batch, 1..{MAX_REF_STEPS} (default 10)")
    r.add_argument("--no_bf16", action="store_true",
                   help="leave out steps_bf16.txt (only the bf16 GPU test reads it)")
    r.add_argument("--vocab", type=int_in(1, VOCAB_SIZE),
                   help=f"vocabulary size V instead of GPT-2's {VOCAB_SIZE} (padded to a multiple of 128)")
    r.add_argument("--max_seq_len", type=int_in(1, MAX_SEQ_LEN),
                   help=f"rows of wpe instead of {MAX_SEQ_LEN}")
    add_optimizer_flags(r, lr=1e-4)

    t = sub.add_parser("train", allow_abbrev=False,
                       help="train a checkpoint on a token shard, print 'step loss grad_norm'")
    t.add_argument("--init", required=True, help="model checkpoint (v3 fp32 or v5 bf16)")
    t.add_argument("--train_bin", required=True,
                   help="glob of token shards; only the first in sorted order is read. Batch i "
                        "is its tokens [i*B*T, i*B*T + B*T + 1), starting over at token 0 "
                        "when the next batch would run past the end")
    t.add_argument("--B", type=int_in(1, MAX_B), default=4,
                   help=f"batch size, 1..{MAX_B} (default 4)")
    t.add_argument("--T", type=int_in(1, MAX_SEQ_LEN), default=64,
                   help="sequence length, at most the checkpoint's max_seq_len (default 64)")
    t.add_argument("--steps", type=int_in(1), default=50, help="training steps (default 50)")
    t.add_argument("--steps_out", help="also write the step lines to this file")
    add_optimizer_flags(t, lr=3e-4)

    b = sub.add_parser("bench", allow_abbrev=False,
                       help="time full training steps; last line 'pytorch_ms_per_step MS'")
    b.add_argument("--model", default="d12", help=model_help + " (default d12)")
    b.add_argument("--seed", type=seed, default=1337, help="init and batch seed (default 1337)")
    b.add_argument("--B", type=int_in(1, MAX_B), default=4,
                   help=f"batch size, 1..{MAX_B} (default 4)")
    b.add_argument("--T", type=int_in(1, MAX_SEQ_LEN), default=64,
                   help=f"sequence length, 1..{MAX_SEQ_LEN} (default 64)")
    b.add_argument("--steps", type=int_in(1), default=5,
                   help="timed steps after one warm-up step; reports their median (default 5)")
    add_optimizer_flags(b, lr=1e-4)
    return p


def main():
    args = build_parser().parse_args()
    run = {"reference": cmd_reference, "train": cmd_train, "bench": cmd_bench}[args.command]
    try:
        run(args)
    except InputError as e:
        die(str(e))
    except OSError as e:
        die(f"{e.filename}: {e.strerror}" if e.filename else str(e))
    except MemoryError:
        die("out of memory (try a smaller --model, --B or --T)")
    except RuntimeError as e:
        if "alloc" not in str(e):
            raise  # a bug, not bad input: keep the traceback
        die(f"out of memory (try a smaller --model, --B or --T): {str(e).splitlines()[0]}")


if __name__ == "__main__":
    main()
