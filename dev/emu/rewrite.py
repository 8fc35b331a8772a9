#!/usr/bin/env python3
"""dev/emu/rewrite.py: turns a .cu/.cuh file into C++ for the CUDA emulation.

    python3 dev/emu/rewrite.py IN.cu OUT.cpp

Four rewrites, each keeping the line count, so compiler, ASan and emulator
messages point at the original lines (a #line directive names the original
file):
  k<<<grid, block, shmem, stream>>>(args)  ->  emu_launch((k), grid, block, shmem, stream, args)
      (shmem and stream default to 0; emu_streams.h queues the launch on the
      stream)
  __shared__ T name[N]...;                 ->  a per-block arena lookup
  extern __shared__ T name[];              ->  T* name = the block's dynamic shared memory
  __launch_bounds__(N, M) f(params) {      ->  the same, then ::emu::launch_bounds(N, M);
      (emu_types.h defines the attribute away; emu_kernel.h checks the
      launch against it: the device refuses more than N threads per block)
Everything else is left as it is; dev/emu/cuda_emu.h (force-included) does
the rest. Launches and __launch_bounds__ inside comments and string literals
are not rewritten (__shared__ declarations are matched anywhere). Exits non-zero with
one "error: ..." line on a launch it cannot parse or a file it cannot read
or write; OUT is written atomically.
"""
import os
import re
import stat
import sys

CLOSE = {"(": ")", "[": "]", "{": "}"}


def fail(path, text, pos, msg):
    line = text.count("\n", 0, pos) + 1
    sys.stderr.write(f"error: {path}:{line}: {msg}\n")
    sys.exit(1)


def code_mask(text):
    """True for each character that is code (not in a comment or literal)."""
    mask = [True] * len(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j += 1
        else:
            i += 1
            continue
        for k in range(i, min(j, n)):
            mask[k] = False
        i = j
    return mask


def split_top(s):
    """Splits s at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def match_close(text, i):
    """Index of the bracket closing the one at text[i]."""
    want, depth = CLOSE[text[i]], 0
    for j in range(i, len(text)):
        if text[j] == text[i]:
            depth += 1
        elif text[j] == want:
            depth -= 1
            if depth == 0:
                return j
    return -1


def kernel_start(text, end):
    """Start of the kernel expression ending at text[end-1]: a name, maybe
    qualified (a::b) and with template arguments (f<T, 4>)."""
    i = end
    while i > 0 and text[i - 1].isspace():
        i -= 1
    while True:
        if i > 0 and text[i - 1] == ">":
            depth = 0
            while i > 0:
                i -= 1
                if text[i] == ">":
                    depth += 1
                elif text[i] == "<":
                    depth -= 1
                    if depth == 0:
                        break
        while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
            i -= 1
        if i >= 2 and text[i - 2:i] == "::":
            i -= 2
            continue
        return i


def rewrite_launches(path, text):
    out, pos = [], 0
    mask = code_mask(text)
    for m in re.finditer(r"<<<", text):
        if not mask[m.start()] or m.start() < pos:
            continue
        ks = kernel_start(text, m.start())
        kernel = text[ks:m.start()].strip()
        if not kernel:
            fail(path, text, m.start(), "<<< without a kernel name before it")
        cfg_end = text.find(">>>", m.end())
        if cfg_end < 0:
            fail(path, text, m.start(), "<<< without >>>")
        cfg = split_top(text[m.end():cfg_end])
        if not 2 <= len(cfg) <= 4:
            fail(path, text, m.start(), f"launch of {kernel}: expected 2 to 4 values in <<<...>>>")
        j = cfg_end + 3
        while j < len(text) and text[j].isspace():
            j += 1
        if j >= len(text) or text[j] != "(":
            fail(path, text, m.start(), f"launch of {kernel}: no argument list after >>>")
        close = match_close(text, j)
        if close < 0:
            fail(path, text, j, f"launch of {kernel}: unbalanced parentheses")
        args = text[j + 1:close]
        shmem = cfg[2] if len(cfg) >= 3 else " 0"
        stream = cfg[3] if len(cfg) == 4 else "0"
        call = f"emu_launch(({kernel}), {cfg[0].strip()}, {cfg[1].strip()}, {shmem.strip()}, {stream.strip()}"
        call += f", {args})" if args.strip() else ")"
        # keep the newlines of the original launch
        call += "\n" * (text.count("\n", ks, close + 1) - call.count("\n"))
        out.append(text[pos:ks])
        out.append(call)
        pos = close + 1
    out.append(text[pos:])
    return "".join(out)


ALIGN = r"(?:__align__\s*\(\s*\d+\s*\)\s*)?"
# a type: words, each maybe qualified (a::b) and with template arguments,
# e.g. "unsigned int", "typename Foo<T, 4>::Storage"
TOKEN = r"(?:::)?[A-Za-z_]\w*(?:\s*<[^;{}]*?>)?(?:::[A-Za-z_]\w*(?:\s*<[^;{}]*?>)?)*"
TYPE = r"((?:" + TOKEN + r"\s+)*?" + TOKEN + ")"
DYN = re.compile(r"extern\s+__shared__\s+" + ALIGN + TYPE + r"\s+" + ALIGN + r"([A-Za-z_]\w*)\s*\[\s*\]\s*;")
ALIGN_N = r"(?:__align__\s*\(\s*(\d+)\s*\)\s*)?"   # the same, its number captured
STATIC = re.compile(r"__shared__\s+" + ALIGN_N + TYPE + r"\s+" + ALIGN_N +
                    r"([A-Za-z_]\w*)\s*((?:\[[^\];]*\]\s*)*);")


def rewrite_shared(text):
    def dyn(m):
        t, name = m.group(1), m.group(2)
        return f"{t}* {name} = ::emu::dynamic_shared<{t}>();" + "\n" * m.group(0).count("\n")

    def static(m):
        align = m.group(1) or m.group(3) or "0"
        t, name, dims = m.group(2), m.group(4), re.sub(r"\s+", "", m.group(5))
        key = f"emu_shared_key_{name}"
        return (f"static char {key}; auto& {name} = *::emu::shared_var<{t}{dims}, {align}>(&{key}, \"{name}\");"
                + "\n" * m.group(0).count("\n"))

    text = DYN.sub(dyn, text)
    return STATIC.sub(static, text)


BOUNDS = re.compile(r"__launch_bounds__\s*\(")


def rewrite_launch_bounds(path, text):
    """Starts the body of each kernel defined with __launch_bounds__ by a
    check of its launch against them (on the same line)."""
    out, pos = [], 0
    mask = code_mask(text)
    for m in BOUNDS.finditer(text):
        if not mask[m.start()]:
            continue
        close = match_close(text, m.end() - 1)
        params = text.find("(", close + 1) if close >= 0 else -1
        params_close = match_close(text, params) if params >= 0 else -1
        if params_close < 0:
            fail(path, text, m.start(), "__launch_bounds__ without a parameter list after it")
        body = params_close + 1
        while body < len(text) and text[body].isspace():
            body += 1
        if body < len(text) and text[body] == ";":   # a declaration
            continue
        if body >= len(text) or text[body] != "{":
            fail(path, text, m.start(), "__launch_bounds__ on a kernel whose body does not follow its parameters")
        bounds = " ".join(text[m.end():close].split())
        out.append(text[pos:body + 1])
        out.append(f" ::emu::launch_bounds({bounds});")
        pos = body + 1
    out.append(text[pos:])
    return "".join(out)


def read_source(src):
    try:
        if not stat.S_ISREG(os.stat(src).st_mode):  # (open() of a FIFO would wait)
            sys.exit(f"error: {src} is not a regular file")
        with open(src, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        sys.exit(f"error: cannot read {src}: {e.strerror}")
    except UnicodeDecodeError:
        sys.exit(f"error: {src} is not UTF-8 text")


def write_atomically(dst, text):
    """dst gets all of text or keeps what it held: a failed write leaves no
    truncated file that make would take as up to date."""
    tmp = dst + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except OSError as e:
        if os.path.isfile(tmp):
            os.remove(tmp)
        sys.exit(f"error: cannot write {dst}: {e.strerror}")


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("error: usage: rewrite.py IN.cu OUT.cpp\n")
        sys.exit(2)
    src, dst = sys.argv[1], sys.argv[2]
    text = rewrite_shared(rewrite_launch_bounds(src, rewrite_launches(src, read_source(src))))
    # the path as written in the sources (make may reach a header as
    # dev/cuda/../../llmc/x.cuh through a dependency file), as a C string
    name = os.path.normpath(src).replace("\\", "\\\\").replace('"', '\\"')
    write_atomically(dst, f'#line 1 "{name}"\n' + text)


if __name__ == "__main__":
    main()
