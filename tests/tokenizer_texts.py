#!/usr/bin/env python3
"""tests/tokenizer_texts.py: writes the hard texts the tokenizer test compares
with the oracle, into DIR (created). Deterministic (fixed seed).

    python3 tests/tokenizer_texts.py DIR [MOBY_DICK_TXT]

Every text is valid UTF-8 and avoids the two code points where js-tiktoken's
JavaScript \\s disagrees with tiktoken's (U+0085, U+FEFF; tested separately)
and code points assigned after Unicode 13, whose letter/number class depends
on the Unicode version of the regex library. Given MOBY_DICK_TXT, it also
writes long_50mb.txt: that text with newlines turned into spaces, repeated to
50 MB (one line).
"""
import os
import random
import sys

# blocks whose code points were all assigned long ago (Unicode <= 6 for most)
POOLS = {
    "latin": [(0x20, 0x7E), (0xA1, 0xFF), (0x100, 0x24F), (0x250, 0x2AF), (0x1E00, 0x1EFF)],
    "combining": [(0x300, 0x36F)],
    "greek_cyrillic": [(0x391, 0x3C9), (0x400, 0x4FF)],
    "rtl": [(0x5D0, 0x5EA), (0x591, 0x5C7), (0x621, 0x64A), (0x64B, 0x65F), (0x660, 0x669),
            (0x6F0, 0x6F9)],
    "indic_thai": [(0x900, 0x97F), (0xE01, 0xE5B)],
    "cjk": [(0x3041, 0x3096), (0x30A1, 0x30FA), (0x4E00, 0x9FA5), (0xAC00, 0xD7A3),
            (0xFF01, 0xFF5E), (0x3001, 0x3003)],
    "symbols": [(0x2010, 0x2027), (0x2030, 0x205E), (0x2070, 0x209C), (0x20A0, 0x20B9),
                (0x2150, 0x2188), (0x2190, 0x21FF), (0x2460, 0x24FF), (0x2500, 0x257F)],
    "astral": [(0x1D400, 0x1D6A5), (0x1D7CE, 0x1D7FF), (0x10330, 0x1034A), (0x1F300, 0x1F5FF),
               (0x1F600, 0x1F64F), (0x1F1E6, 0x1F1FF), (0x1F3FB, 0x1F3FF), (0x20000, 0x2A6D6),
               (0x1D11E, 0x1D126)],
    "space": [(0x20, 0x20), (0x9, 0xD), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
              (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
              (0x180E, 0x180E), (0x200B, 0x200D)],
}

import unicodedata


def usable(cp):
    if cp in (0x85, 0xFEFF) or 0xD800 <= cp <= 0xDFFF:
        return False
    return unicodedata.category(chr(cp)) != "Cn"


def pick(rng, pool):
    while True:
        lo, hi = rng.choice(POOLS[pool])
        cp = rng.randint(lo, hi)
        if usable(cp):
            return chr(cp)


CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M",
                "'LL", "'D", "'Re", "'lL", "'", "''", "’s", "'x", "'sa", "'ll0"]


def fuzz(rng, n_chars):
    """random mixtures of words, numbers, symbols, whitespace runs and contractions"""
    out, size = [], 0
    while size < n_chars:
        kind = rng.random()
        if kind < 0.30:
            pool = rng.choice(list(POOLS))
            s = "".join(pick(rng, pool) for _ in range(rng.randint(1, 12)))
        elif kind < 0.45:
            s = rng.choice(["", " ", "  ", "\t", "\n", "\r\n", " \n", "\u3000", "\xa0"]) + \
                "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
                        for _ in range(rng.randint(1, 10)))
        elif kind < 0.55:
            s = rng.choice(CONTRACTIONS)
        elif kind < 0.65:
            s = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20)))
        elif kind < 0.80:
            s = "".join(pick(rng, "space") for _ in range(rng.randint(1, 5)))
        else:
            s = "".join(rng.choice("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'") for _ in range(rng.randint(1, 6)))
        out.append(s)
        size += len(s)
    return "".join(out)


def texts(rng):
    t = {}
    t["empty"] = ""
    t["cjk"] = ("日本語のテキスト、漢字とひらがなとカタカナ。中文文本：我们今天去北京天安门广场，"
                "看到了很多人。한국어 텍스트입니다. 「引用」『二重』（括弧）\n"
                "東京都渋谷区神南一丁目二番三号 ＡＢＣ　ｄｅｆ　１２３\n"
                + "漢字" * 300 + "\n" + "ひらがなカタカナ" * 50 + " 한국어" * 40 + "\n")
    t["emoji"] = ("Emoji 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇺🇸🇯🇵 ❤️ ✨🎉 family: 👩‍❤️‍💋‍👨 keycap 1️⃣ #️⃣\n"
                  "Math 𝐀𝐁𝐂 𝑥𝑦𝑧 𝟎𝟏𝟐 Gothic 𐌰𐌱𐌲 music 𝄞𝄢 CJK-B 𠀀𠀁𠮷 野家\n"
                  + "🎉" * 200 + " " + "𝐀" * 100 + "\n" + "😀 " * 100 + "\n")
    t["combining"] = ("e\u0301 cafe\u0301 Ame\u0301lie n\u0303 Tiếng Việt có dấu: Nguyễn Thị Hường\n"
                      "Z\u0351\u0322a\u0306\u0325l\u0323\u0357g\u0308o\u0301\u0327 zalgo\n"
                      "हिन्दी देवनागरी लिपि में लिखा गया पाठ ॥ १२३४\n"
                      "ภาษาไทยไม่มีช่องว่างระหว่างคำ ๑๒๓\n"
                      "x\u0300\u0301\u0302\u0303\u0304 \u0301\u0302 start\n")
    t["rtl"] = ("العربية: مَرْحَبًا بِالْعَالَمِ، كيف حالك؟ ١٢٣٤٥ ۱۲۳\n"
                "עברית: שָׁלוֹם עוֹלָם, מה שלומך? 123 ABC\n"
                "mixed \u200fRLM\u200e LRM \u202bembed\u202c English עם עברית و عربي.\n")
    t["contractions"] = (" ".join(CONTRACTIONS) + "\n"
                         "he's she'll I'm you're we've they'd it's ISN'T HE'S SHE'LL I'M YOU'RE "
                         "WE'VE THEY'D DON'T don't can't won't y'all O'NEIL'S rock'n'roll 'twas "
                         "'TWAS ''s 's's '''ll \"'s\" ('s) 's\n's\n  's\t'LL\n"
                         "'S'LL'S'll's'LL  'S  'll JOHN'S BOOK's john'S 1's 2'LL _'s\n")
    t["digits"] = ("0123456789" * 100 + "\n3.14159265358979323846 1,234,567.89 2024-11-25 "
                   "12:34:56 +1-800-555-0199 v1.2.3 x1y2z3 abc123def 007 ½¼¾ ²³¹ Ⅻ ⅷ ①②③ "
                   "１２３ ٠١٢٣ 𝟎𝟏𝟐 " + "9" * 1000 + " 1 22 333 4444 55555\n"
                   + " ".join(str(rng.randint(0, 10 ** rng.randint(1, 30))) for _ in range(300)) + "\n")
    t["whitespace"] = ("a\tb\t\tc \t d\t\n\tindented\n\t\t\tx\n"
                       "line1\r\nline2\r\n\r\nline3\r\n \r\n\r\r\n"
                       "trailing   \nnext  \n   \n\n\n  x\n \n\n"
                       "nbsp\xa0\xa0x ideo\u3000\u3000x lsep\u2028psep\u2029 vt\x0bff\x0c"
                       " ogham\u1680x en\u2002em\u2003thin\u2009x nnbsp\u202fx mmsp\u205fx\n"
                       "mongolian\u180evs \u180e x zwsp\u200bx zwj\u200dx\n"
                       "  \t  \n\t \n \t\r\n x \n\n\n\n\n\n\n\nend with spaces   ")
    t["spaces_10k"] = " " * 10000
    t["spaces_10k_x"] = " " * 10000 + "x" + "\n" * 5000 + "y" + "\t" * 3000 + " z" + " \n" * 2000
    t["long_pieces"] = ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1500)) + " " +
                        "ab" * 700 + " " + "!?" * 400 + " " + "é" * 600 + "\n")
    t["symbols"] = ("!!! ??? ... --- === *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<< >>> "
                    "||| \\\\\\ /// ~~~ ``` ''' \"\"\" ,,, ;;; ::: — – … « » „ “ ” ‘ ’ • · © ® ™ € £ ¥ "
                    "<|endoftext|> <|endoftext <|im_start|> </s> <s> [CLS] \x00\x01\x1f\x7f\n"
                    "def f(x):\n    return x**2  # comment\n\nint main() { return 0; }\n"
                    "<html><body class=\"x\">&amp;&lt;</body></html>\n")
    t["special"] = ("<|endoftext|>a<|endoftext|>b <|endoftext|> c\n<|endoftext|><|endoftext|>"
                    "<|endoftext|\n<<|endoftext|>>\nx<|endoftext|>\n\n<|endoftext|>y <|ENDOFTEXT|> "
                    "'s<|endoftext|>'s   <|endoftext|>   \n<|endoftext|>")
    t["fuzz"] = fuzz(rng, 300000)
    t["fuzz_small_pieces"] = "".join(pick(rng, rng.choice(list(POOLS))) for _ in range(100000))
    return t


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(20240328)
    for name, text in texts(rng).items():
        with open(os.path.join(out, name + ".txt"), "wb") as f:
            f.write(text.encode("utf-8"))
    if len(sys.argv) > 2:
        with open(sys.argv[2], "rb") as f:
            line = f.read().replace(b"\r", b" ").replace(b"\n", b" ")
        with open(os.path.join(out, "long_50mb.txt"), "wb") as f:
            n = 50 * 1000 * 1000
            f.write((line * (n // len(line) + 1))[:n])


if __name__ == "__main__":
    main()
