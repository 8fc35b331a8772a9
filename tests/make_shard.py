"""Writes a token shard (llm.c format) of random tokens, for tests.

usage: make_shard.py OUT NUM_TOKENS SEED [VOCAB]
Tokens follow a first-order Markov chain over 64 ids of VOCAB (default
50257); the chain is the same for every seed (the seed picks the walk), so
train and val shards share the structure a model can learn.
"""
import sys

import numpy as np

out, ntok, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
vocab = int(sys.argv[4]) if len(sys.argv) > 4 else 50257
chain = np.random.default_rng(1234)
ids = chain.choice(vocab, size=64, replace=False)
nxt = chain.integers(0, 64, size=(64, 4))
rng = np.random.default_rng(seed)
state, toks = 0, np.empty(ntok, dtype=np.uint16)
choices = rng.integers(0, 4, size=ntok)
for i in range(ntok):
    toks[i] = ids[state]
    state = nxt[state, choices[i]]
header = np.zeros(256, dtype=np.int32)
header[:3] = [20240520, 1, ntok]
with open(out, "wb") as f:
    f.write(header.tobytes())
    f.write(toks.tobytes())
