"""Converts HellaSwag (the jsonl of its repository, e.g. hellaswag_val.jsonl)
into the file the trainers' -hs reads: llm.c's format (llmc/hellaswag.h),
tokenized by ./tokenize (make tokenize) as llm.c's own script does with
tiktoken: the context as it is, each ending after a space.

usage: python3 dev/data/hellaswag.py IN.jsonl OUT.bin [--tokenize PATH]

Each line: {"ctx": str, "endings": [4 str], "label": 0..3, ...}; lines end
at "\\n" only (a raw U+2028 inside a JSON string is no line break). A bad
line is a one-line error naming it; OUT is written atomically. The format's
example index is 16 bits: at most 65536 examples.
"""
import json
import os
import stat
import subprocess
import sys

import numpy as np

END = 50256  # <|endoftext|>: separates the strings in one call of ./tokenize
MAGIC, VERSION = 20240522, 1  # llmc/hellaswag.h
MAX_EXAMPLES = 1 << 16  # the example's index is a uint16
MAX_BYTES = 65535  # an example's size in bytes is a uint16


def fail(msg):
    sys.exit(f"error: {msg}")


def is_text(t):
    """A non-empty str that UTF-8 can encode (no lone surrogate such as
    "\\ud800") and that does not hold the separator."""
    if not isinstance(t, str) or not t.strip() or "<|endoftext|>" in t:
        return False
    try:
        t.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_examples(src):
    """The examples of the jsonl src: (input line, label) each, and their 5
    strings each (the context, then the endings after a space)."""
    try:
        if not stat.S_ISREG(os.stat(src).st_mode):  # (open() of a FIFO would wait)
            fail(f"{src} is not a regular file")
        with open(src, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"cannot read {src}: {e.strerror}")
    examples, strings = [], []
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            fail(f"{src}:{n}: not UTF-8 (byte {e.start + 1} of the line)")
        if not line.strip():
            continue
        try:
            ex = json.loads(line)
            ctx, endings, label = ex["ctx"], ex["endings"], ex["label"]
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            fail(f"{src}:{n}: not a HellaSwag example ({e})")
        texts = [ctx] + endings if isinstance(endings, list) else []
        if (len(texts) != 5 or type(label) is not int or not 0 <= label < 4  # (not bool)
                or not all(is_text(t) for t in texts)):
            fail(f"{src}:{n}: want a non-empty ctx, 4 non-empty endings (strings, UTF-8) "
                 f"and a label 0..3")
        if len(examples) == MAX_EXAMPLES:
            fail(f"{src}:{n}: more than {MAX_EXAMPLES} examples, the most the format's "
                 f"16-bit index holds")
        examples.append((n, label))
        strings += [ctx] + [" " + e for e in endings]
    if not examples:
        fail(f"{src}: no examples")
    return examples, strings


def write_atomically(out, data):
    """out gets all of data or keeps what it held (no OUT.tmp left behind)."""
    tmp = out + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as e:
        if os.path.isfile(tmp):
            os.remove(tmp)
        fail(f"cannot write {out}: {e.strerror}")


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
    # OUT checked before the work
    if not out or os.path.isdir(out) or not os.path.isdir(os.path.dirname(out) or "."):
        fail(f"cannot write {out}: not a file in an existing folder")
    examples, strings = read_examples(src)
    text = "<|endoftext|>".join(strings).encode("utf-8")
    try:
        run = subprocess.run([tokenize, "--ids", "--allow-special"], input=text, capture_output=True)
    except OSError as e:
        fail(f"--tokenize {tokenize}: cannot run it: {e.strerror}")
    if run.returncode != 0:
        fail(f"{tokenize} failed: {run.stderr.decode(errors='replace').strip()}")
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
    for i, (n, label) in enumerate(examples):
        ctx, ends = pieces[5 * i], pieces[5 * i + 1 : 5 * i + 5]
        ex = [65535, 0, i, label, 4, len(ctx), *ctx]
        for e in ends:
            ex += [len(e), *e]
        if 2 * len(ex) > MAX_BYTES:
            fail(f"{src}:{n}: the example is too long for the format ({len(ex)} values, "
                 f"at most {MAX_BYTES // 2})")
        ex[1] = 2 * len(ex)
        longest = max(longest, ex[1])
        data += ex
    header = np.zeros(256, dtype=np.int32)
    header[:4] = [MAGIC, VERSION, len(examples), longest]
    write_atomically(out, header.tobytes() + np.array(data, dtype=np.uint16).tobytes())
    print(f"{out}: {len(examples)} examples, {len(ids) - len(strings) + 1} tokens")


if __name__ == "__main__":
    main()
