#!/usr/bin/env bash
# Builds the one-file hearth for Linux x86_64 and prints the path of the executable.
#
# The executable carries, zstd-compressed (src/bundle.rs): the embedding model and its
# tokenizer files and licence, ONNX Runtime, the notification templates, a fallback font
# (DejaVu Sans with its licence) and hearth's LICENSE and NOTICE; export templates are
# compiled in anyway. At start it unpacks them once into <data dir>/bundle/<id>/, checked
# by sha256. Copied alone into an empty directory, `./hearth serve` has semantic search,
# PDF export with non-ASCII text and templated email, with no network and no Python.
#
# Needs: cargo, zstd, sha256sum, fonts-dejavu-core, and the model files in models/ (this
# script runs models/fetch.sh, which downloads nothing when they are present).
# The build uses the `dist` profile (thin LTO, stripped). On 2 cores it takes a while;
# set CARGO_TARGET_DIR to keep it apart from development builds.
#
# Usage: bash dist/build.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
stage="$target/bundle-stage"
font="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
font_licence="/usr/share/doc/fonts-dejavu-core/copyright"

step() { printf '[dist %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "dist/build.sh: error: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo not found"
command -v zstd >/dev/null || die "zstd not found (apt-get install zstd)"
command -v sha256sum >/dev/null || die "sha256sum not found"
[ -f "$font" ] && [ -f "$font_licence" ] || die "DejaVu Sans not found (apt-get install fonts-dejavu-core)"

step "1/4 model files (models/fetch.sh)"
bash models/fetch.sh

# What goes in: source file -> path inside the unpacked directory.
files=(
  "models/model.onnx=models/model.onnx"
  "models/tokenizer.json=models/tokenizer.json"
  "models/config.json=models/config.json"
  "models/special_tokens_map.json=models/special_tokens_map.json"
  "models/tokenizer_config.json=models/tokenizer_config.json"
  "models/LICENSE=models/LICENSE"
  "models/NOTICE=models/NOTICE"
  "models/libonnxruntime.so.1.24.4=models/libonnxruntime.so"
  "$font=fonts/DejaVuSans.ttf"
  "$font_licence=fonts/LICENSE"
  "LICENSE=LICENSE"
  "NOTICE=NOTICE"
)
while IFS= read -r f; do
  files+=("$f=$f")
done < <(find templates/notifications -type f ! -name .gitkeep | sort)

rm -rf "$stage"
mkdir -p "$stage"
manifest="$stage/manifest.rs"
{
  echo "// Written by dist/build.sh; the files bundled into a one-file hearth."
  echo "pub const FILES: &[BundledFile] = &["
} > "$manifest"
n=0
total=${#files[@]}
for entry in "${files[@]}"; do
  src="${entry%%=*}"
  dest="${entry#*=}"
  n=$((n + 1))
  [ -f "$src" ] || die "missing $src"
  zst="$stage/$n.zst"
  zstd -q -19 -T0 -f "$(readlink -f "$src")" -o "$zst"
  sum="$(sha256sum "$(readlink -f "$src")" | cut -d' ' -f1)"
  size="$(stat -L -c %s "$src")"
  step "2/4 compressed $n/$total $dest ($size -> $(stat -c %s "$zst") bytes)"
  printf '    BundledFile { path: "%s", sha256: "%s", size: %s, zst: include_bytes!("%s") },\n' "$dest" "$sum" "$size" "$zst" >> "$manifest"
done
echo "];" >> "$manifest"

step "3/4 cargo build --profile dist --features bundle (thin LTO; long on 2 cores)"
HEARTH_BUNDLE_MANIFEST="$manifest" cargo build --profile dist --features bundle --bin hearth

out="$target/dist/hearth"
[ -x "$out" ] || die "the build wrote no $out"
step "4/4 done: $(stat -c %s "$out") bytes; needs $(objdump -T "$out" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || echo 'glibc (objdump not found)')"
echo "$out"
