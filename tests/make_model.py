"""Writes a small GPT-2 model file (llm.c format, fp32, version 3) with a
GPT-2 style random init, for tests that need a vocabulary smaller than
GPT-2's (the emulated GPU trainer: its classifier dominates the run time).

usage: make_model.py OUT L NH C V MAX_T SEED [bf16]
With bf16: a version 5 file, the weights cut to bf16 (their top 16 bits).
Tensors in checkpoint order (llmc/gpt2.h): weights normal(0, 0.02),
projections into the residual stream normal(0, 0.02/sqrt(2L)), layernorm
weights 1, biases 0; the padded vocabulary Vp is V rounded up to 128, its
extra rows 0. No checksum (header slot 8 = 0), which the loaders accept.
"""
import sys

import numpy as np

out = sys.argv[1]
L, NH, C, V, maxT, seed = (int(a) for a in sys.argv[2:8])
bf16 = sys.argv[8:] == ["bf16"]
Vp = (V + 127) // 128 * 128
rng = np.random.default_rng(seed)
header = np.zeros(256, dtype=np.int32)
header[:8] = [20240326, 5 if bf16 else 3, maxT, V, L, NH, C, Vp]


def normal(shape, std):
    return rng.normal(0.0, std, size=shape).astype(np.float32)


wte = np.zeros((Vp, C), dtype=np.float32)
wte[:V] = normal((V, C), 0.02)
res = 0.02 / np.sqrt(2 * L)
tensors = [wte, normal((maxT, C), 0.02),
           np.ones((L, C)), np.zeros((L, C)),                  # ln1
           normal((L, 3 * C, C), 0.02), np.zeros((L, 3 * C)),  # qkv
           normal((L, C, C), res), np.zeros((L, C)),           # attproj
           np.ones((L, C)), np.zeros((L, C)),                  # ln2
           normal((L, 4 * C, C), 0.02), np.zeros((L, 4 * C)),  # fc
           normal((L, C, 4 * C), res), np.zeros((L, C)),       # fcproj
           np.ones(C), np.zeros(C)]                            # lnf
with open(out, "wb") as f:
    f.write(header.tobytes())
    for t in tensors:
        t = np.asarray(t, dtype=np.float32)
        f.write((t.view(np.uint32) >> 16).astype(np.uint16).tobytes() if bf16 else t.tobytes())
