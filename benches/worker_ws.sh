#!/usr/bin/env bash
# Streaming worker protocol benchmark (outside CI; it builds nothing): a `hearth serve`
# on a temp dir and a free port, N no-op jobs enqueued in batches of 1,000, then the Node
# worker example (examples/node_worker.mjs: one complete frame per job, one ack per job)
# with credit C until every job is acknowledged. Prints one JSON line.
#
# The peer, run in the same minute for a comparison: ../shared/peers/bullmq/run.sh N C always
# (BullMQ 5 + redis-server with appendfsync always, one Worker with concurrency C).
#
# Usage: benches/worker_ws.sh [N=20000] [C=50]
#   HEARTH_BIN  the binary (default target/release/hearth; e.g. the bench target
#               /work/target-bench/release/hearth built with cargo build --release --bin hearth)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
credit=${2:-50}
bin=${HEARTH_BIN:-target/release/hearth}
[ -x "$bin" ] || { echo "no $bin: build it first (cargo build --release --bin hearth) or set HEARTH_BIN" >&2; exit 1; }
[ -d .ci/node/node_modules/ws ] || npm install --silent --no-audit --no-fund --prefix .ci/node ws >/dev/null

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HEARTH__MODULES__SEARCH__ENABLED=false RUST_LOG=warn "$bin" serve --data-dir "$work/data" --bind "127.0.0.1:$port" >"$work/hearth.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 200); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.05; done

# The worker as a user runs it: the example beside a node_modules that has ws.
cp examples/node_worker.mjs "$work/"
ln -s "$PWD/.ci/node/node_modules" "$work/node_modules"

enqueue_s=$(node -e '
const [base, n] = [process.argv[1], +process.argv[2]];
(async () => {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) batch.push({ name: "noop", queue: "bench", payload: { i: j } });
    const r = await fetch(base + "/api/jobs/batch", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(batch) });
    if (r.status !== 201) throw new Error("enqueue: " + r.status + " " + (await r.text()));
  }
  console.log((performance.now() - t0) / 1000);
})().catch((e) => { console.error(e); process.exit(1); });
' "$base" "$n")

summary=$(HEARTH_URL=$base HEARTH_QUEUES=bench HEARTH_CREDIT=$credit HEARTH_STOP_AFTER=$n node "$work/node_worker.mjs" | tail -1)
node -e '
const [n, credit, enq, s] = [+process.argv[1], +process.argv[2], +process.argv[3], JSON.parse(process.argv[4])];
if (s.processed !== n) { console.error("processed " + s.processed + " of " + n); process.exit(1); }
console.log(JSON.stringify({ system: "hearth /ws/worker", n, credit, enqueue_per_s: Math.round(n / enq), process_per_s: Math.round(n / s.seconds) }));
' "$n" "$credit" "$enqueue_s" "$summary"
