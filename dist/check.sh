#!/usr/bin/env bash
# The manual check of a one-file hearth (not part of CI: it needs the dist build).
# Copies the executable alone into an empty directory and runs it with an empty
# environment, as a new user would on a machine with no Python, no model folder and no
# network: semantic search must be ready, a PDF export must carry non-ASCII text, and a
# templated email must arrive. Prints what it measured.
#
# Needs on the checking machine: curl, pdftotext (poppler-utils), python3 with aiosmtpd
# (the SMTP sink; .ci/run installs it).
#
# Usage: bash dist/check.sh target/dist/hearth
set -euo pipefail
bin="$(readlink -f "${1:?usage: dist/check.sh PATH/TO/hearth}")"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
say() { printf '[check] %s\n' "$*"; }
fail() { echo "dist/check.sh: FAILED: $*" >&2; [ -f "$work/run/hearth.log" ] && tail -20 "$work/run/hearth.log" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/run" "$work/mail/cur" "$work/mail/new" "$work/mail/tmp"
cp "$bin" "$work/run/hearth"
cd "$work/run"
say "artifact: $(stat -c %s hearth) bytes; glibc floor $(objdump -T hearth | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"

smtp="$(free_port)"
python3 -m aiosmtpd -n -l "127.0.0.1:$smtp" -c aiosmtpd.handlers.Mailbox "$work/mail" &
pids+=($!)
port="$(free_port)"
base="http://127.0.0.1:$port"
start=$(date +%s%N)
env -i PATH=/usr/bin:/bin HOME="$work" SMTP_URL="smtp://127.0.0.1:$smtp?tls=none" \
  ./hearth serve --bind "127.0.0.1:$port" > hearth.log 2>&1 &
pids+=($!)
hearth_pid=$!

for _ in $(seq 1 600); do
  ready="$(curl -s "$base/readyz" || true)"
  case "$ready" in *'"search":{"status":"ready"'*|*'"search": {"status": "ready"'*) break ;; esac
  sleep 0.1
done
echo "$ready" | python3 -c 'import json,sys; r=json.load(sys.stdin); s=r["modules"]["search"]; assert s["status"]=="ready", s' \
  || fail "semantic search is not ready: $ready"
say "semantic search ready $(( ($(date +%s%N) - start) / 1000000 )) ms after start (first start unpacks the bundle into $(ls -d data/bundle/*))"
say "idle RSS: $(( $(awk '/VmRSS/ {print $2}' /proc/$hearth_pid/status) / 1024 )) MB (model loaded)"

post() { curl -s -f -H 'content-type: application/json' -d "$2" "$base$1"; }
post /api/search/index '{"id": "cat", "content": "The cat sat on the mat and purred."}' >/dev/null
post /api/search/index '{"id": "money", "content": "Quarterly revenue grew by twelve percent."}' >/dev/null
hits="$(post /api/search '{"query": "a kitten resting on a rug", "mode": "semantic"}')"
echo "$hits" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r and r[0]["id"]=="cat" and r[0]["scores"]["semantic"], r' \
  || fail "semantic search: $hits"
say "semantic search finds 'cat' for 'a kitten resting on a rug'"

text='Grüße aus München — Ελληνικά, Русский, café'
job="$(post /api/exports "{\"source_type\": \"transcript\", \"format\": \"pdf\", \"source\": {\"title\": \"Überblick\", \"segments\": [{\"start\": 0, \"end\": 2, \"speaker\": \"Anna\", \"text\": \"$text\"}]}}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')"
for _ in $(seq 1 200); do
  st="$(curl -s "$base/api/exports/$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
  [ "$st" = completed ] && break
  [ "$st" = failed ] && fail "pdf export failed: $(curl -s "$base/api/exports/$job")"
  sleep 0.1
done
curl -s -f -o out.pdf "$base/api/exports/$job/download" || fail "pdf download"
pdftotext out.pdf - | grep -q "Ελληνικά, Русский" || fail "the PDF lacks the non-ASCII text: $(pdftotext out.pdf - | head -5)"
say "PDF export keeps non-ASCII text ($(stat -c %s out.pdf) bytes, font from the bundle)"

curl -s -f -X PUT -H 'content-type: application/json' -d '{"email": "anna@example.com"}' "$base/api/notifications/preferences/anna" >/dev/null
post /api/notifications '{"type": "success", "title": "Export ready", "user_id": "anna", "channels": ["email"], "template": "export_ready", "data": {"format": "pdf", "filename": "Grüße.pdf", "download_url": "https://example.com/d/1"}}' >/dev/null
for _ in $(seq 1 100); do
  [ -n "$(ls "$work/mail/new")" ] && break
  sleep 0.1
done
[ -n "$(ls "$work/mail/new")" ] || fail "no email arrived"
grep -rq "is ready" "$work/mail/new" || fail "the email is not the export_ready template"
say "templated email (export_ready) delivered"
say "all checks passed"
