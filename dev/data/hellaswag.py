"""Converts HellaSwag (the jsonl of its repository, e.g. hellaswag_val.jsonl)
into the file the trainers' -hs reads: llm.c's format (llmc/hellaswag.h),
tokenized by ./tokenize (make tokenize) as llm.c's own script does with
tiktoken: the context as it is, each ending after a space.

usage: python3 dev/data/hellaswag.py IN.jsonl OUT.bin [--tokenize PATH]

Each line: {"ctx": str, "endings": [4 str], "label": 0..3, ...}. A bad line
is a one-line error naming it; OUT is written atomically.
"""
import json
import os
import subprocess
import sys

import numpy as np

END = 50256  # <|endoftext|>: separates the strings in one call of ./tokenize


def fail(msg):
    sys.exit(f"error: {msg}")


def main():
    args = sys.argv[1:]
    tokenize = "./tokenize"
    if "--tokenize" in args:
        i = args.index("--tokenize")
        if i + 1 >= len(args):
            fail("--tokenize needs a path")
        tokenize = args[i + 1]
        del args[i : i + 2]
    if len(args) != 2:
        fail("usage: hellaswag.py IN.jsonl OUT.bin [--tokenize PATH]")
    src, out = args
    examples, strings = [], []
    try:
        lines = open(src, encoding="utf-8").read().splitlines()
    except OSError as e:
        fail(f"cannot read {src}: {e.strerror}")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ex = json.loads(line)
            ctx, endings, label = ex["ctx"], ex["endings"], ex["label"]
        except (ValueError, KeyError, TypeError) as e:
            fail(f"{src}:{n}: not a HellaSwag example ({e})")
        texts = [ctx] + [" " + e for e in endings] if isinstance(endings, list) else []
        if (len(texts) != 5 or not isinstance(label, int) or not 0 <= label < 4
                or not all(isinstance(t, str) and t.strip() and "<|endoftext|>" not in t for t in texts)):
            fail(f"{src}:{n}: want a non-empty ctx, 4 non-empty endings and a label 0..3")
        examples.append(label)
        strings += texts
    if not examples:
        fail(f"{src}: no examples")
    text = "<|endoftext|>".join(strings).encode("utf-8")
    run = subprocess.run([tokenize, "--ids", "--allow-special"], input=text, capture_output=True)
    if run.returncode != 0:
        fail(f"{tokenize} failed: {run.stderr.decode().strip()}")
    ids = [int(x) for x in run.stdout.split()]
    pieces, cur = [], []
    for t in ids:
        if t == END:
            pieces.append(cur)
            cur = []
        else:
            cur.append(t)
    pieces.append(cur)
    if len(pieces) != len(strings):
        fail(f"tokenizing gave {len(pieces)} strings, want {len(strings)}")
    data, longest = [], 0
    for i, label in enumerate(examples):
        ctx, ends = pieces[5 * i], pieces[5 * i + 1 : 5 * i + 5]
        ex = [65535, 0, i, label, 4, len(ctx), *ctx]
        for e in ends:
            ex += [len(e), *e]
        if 2 * len(ex) > 65535:
            fail(f"example {i} is too long for the format ({len(ex)} tokens)")
        ex[1] = 2 * len(ex)
        longest = max(longest, ex[1])
        data += ex
    header = np.zeros(256, dtype=np.int32)
    header[:4] = [20240522, 1, len(examples), longest]
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header.tobytes())
        f.write(np.array(data, dtype=np.uint16).tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    print(f"{out}: {len(examples)} examples, {len(ids) - len(strings) + 1} tokens")


if __name__ == "__main__":
    main()
