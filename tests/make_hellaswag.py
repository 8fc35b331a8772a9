"""Writes a HellaSwag file (llm.c's format, llmc/hellaswag.h) whose right
answers are in a token shard, for tests.

usage: make_hellaswag.py SHARD OUT EXAMPLES T CONTEXT COMPLETION SEED [VOCAB] [--wrong-labels]
Example i: context = the shard's tokens i*T .. i*T+CONTEXT-1 (row i of a
batch read from its start, -sh 0), the right completion = the COMPLETION
tokens after it, three wrong ones = random tokens of VOCAB (default 512),
the right one at a random place. --wrong-labels names another completion as
right: a model that knows the shard then scores 0.
"""
import sys

import numpy as np

args = [a for a in sys.argv[1:] if a != "--wrong-labels"]
wrong_labels = "--wrong-labels" in sys.argv
shard, out = args[0], args[1]
n, T, ctx, comp, seed = (int(a) for a in args[2:7])
vocab = int(args[7]) if len(args) > 7 else 512
toks = np.fromfile(shard, dtype=np.uint16, offset=256 * 4)
assert (n - 1) * T + ctx + comp <= len(toks) and ctx + comp - 1 <= T
rng = np.random.default_rng(seed)
data, longest = [], 0
for i in range(n):
    s = i * T
    context, right = toks[s : s + ctx], toks[s + ctx : s + ctx + comp]
    label = int(rng.integers(0, 4))
    ends = [rng.integers(0, vocab, size=comp).astype(np.uint16) for _ in range(4)]
    ends[label] = right
    ex = [65535, 0, i, (label + 1) % 4 if wrong_labels else label, 4, ctx, *context]
    for e in ends:
        ex += [len(e), *e]
    ex[1] = 2 * len(ex)
    longest = max(longest, ex[1])
    data += ex
header = np.zeros(256, dtype=np.int32)
header[:4] = [20240522, 1, n, longest]
with open(out, "wb") as f:
    f.write(header.tobytes())
    f.write(np.array(data, dtype=np.uint16).tobytes())
