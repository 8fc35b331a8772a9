// tests/tiktoken_ids.js: the test oracle, GPT-2 token ids from js-tiktoken (a
// JavaScript port of tiktoken), installed by scripts/install_deps.sh.
//
//   node tests/tiktoken_ids.js [--allow-special] FILE            ids of FILE, one line
//   node tests/tiktoken_ids.js [--allow-special] --out DIR FILE...   DIR/<name>.ids each
//   node tests/tiktoken_ids.js --docs FILE...    one line: per FILE, 50256 then its ids
//                                                (what ./tokenize writes to a shard)
//   node tests/tiktoken_ids.js --bench FILE      encoding throughput, one line
//
// Files are read as UTF-8 with invalid bytes replaced by U+FFFD (TextDecoder),
// as a JavaScript caller would have them. Without --allow-special the text
// "<|endoftext|>" is ordinary text (tiktoken's encode_ordinary).
"use strict";
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const pkg = path.join(root, "build/npm/node_modules/js-tiktoken");
const { getEncoding } = require(pkg);
const enc = getEncoding("gpt2");
const EOT = 50256;

function readText(file) {
    return new TextDecoder("utf-8").decode(fs.readFileSync(file));
}

function encode(text, allowSpecial) {
    return allowSpecial ? enc.encode(text, "all") : enc.encode(text, [], []);
}

function main() {
    const args = process.argv.slice(2);
    let allowSpecial = false, out = null, mode = "ids";
    const files = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === "--allow-special") allowSpecial = true;
        else if (args[i] === "--out") out = args[++i];
        else if (args[i] === "--docs") mode = "docs";
        else if (args[i] === "--bench") mode = "bench";
        else if (args[i].startsWith("-")) throw new Error(`unknown flag ${args[i]}`);
        else files.push(args[i]);
    }
    if (files.length === 0) throw new Error("no input files");

    if (mode === "bench") {
        const text = readText(files[0]);
        const bytes = Buffer.byteLength(text);
        const t0 = process.hrtime.bigint();
        const ids = encode(text, false);
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        const version = JSON.parse(fs.readFileSync(path.join(pkg, "package.json"))).version;
        console.log(`js-tiktoken ${version}: encoded ${bytes} bytes into ${ids.length} tokens ` +
            `in ${s.toFixed(3)} s: ${(bytes / 1e6 / s).toFixed(2)} MB/s`);
    } else if (mode === "docs") {
        const all = [];
        for (const f of files) {
            all.push(EOT);
            for (const id of encode(readText(f), allowSpecial)) all.push(id);
        }
        process.stdout.write(all.join(" ") + "\n");
    } else if (out !== null) {
        for (const f of files) {
            const ids = encode(readText(f), allowSpecial);
            fs.writeFileSync(path.join(out, path.basename(f).replace(/\.[^.]*$/, "") + ".ids"),
                ids.join(" ") + "\n");
        }
    } else {
        process.stdout.write(encode(readText(files[0]), allowSpecial).join(" ") + "\n");
    }
}

main();
