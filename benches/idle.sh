#!/usr/bin/env bash
# Idle footprint of `hearth serve`: time from start to the first 200 of /healthz, and the
# resident memory (RSS) once idle, without the model (empty model dir) and — when the
# model files are in models/ — with it. Prints the figures; asserts nothing.
#
# Usage: bash benches/idle.sh [PATH/TO/hearth]   (default: target/release/hearth)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(readlink -f "${1:-$root/target/release/hearth}")"
[ -x "$bin" ] || { echo "no executable at $bin (cargo build --release)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

measure() { # label model_dir
  local work port pid start t rss
  work="$(mktemp -d)"
  port="$(free_port)"
  start=$(date +%s%N)
  (cd "$work" && exec env -i PATH=/usr/bin:/bin HEARTH__SEARCH__EMBEDDINGS__MODEL_DIR="$2" "$bin" serve --bind "127.0.0.1:$port" >"$work/log" 2>&1) &
  pid=$!
  until curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" 2>/dev/null | grep -q 200; do sleep 0.002; done
  t=$(( ($(date +%s%N) - start) / 1000 ))
  # Let background loading (store, model) settle, then read the resident set.
  for _ in $(seq 1 50); do
    curl -s "http://127.0.0.1:$port/readyz" | grep -q '"status":"loading"' || break
    sleep 0.1
  done
  sleep 2
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  awk -v l="$1" -v t="$t" -v r="$rss" 'BEGIN { printf "%-16s start to /healthz: %6.1f ms   idle RSS: %6.1f MB\n", l, t / 1000, r / 1024 }'
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}

empty="$(mktemp -d)"
label="no model"
# A one-file build falls back to its bundled model when the model dir is empty.
if (cd "$empty" && "$bin" models status 2>/dev/null | grep -q '^bundle: [0-9]'); then label="bundled model"; fi
rm -rf "$empty/data"
for i in 1 2 3; do measure "$label #$i" "$empty"; done
if [ -f "$root/models/model.onnx" ]; then
  measure "with model" "$root/models"
fi
rm -rf "$empty"
