#!/usr/bin/env bash
# Runs hearth's fuzz targets for a bounded time each (see README.md here).
#
#   fuzz/run.sh                 every target, 60 s each
#   fuzz/run.sh 120 codec       one target, 120 s
#   FUZZ_ARGS="-fork=1 -ignore_crashes=1" fuzz/run.sh 60 codec
#                               go on past findings (each is saved in artifacts/)
#
# New inputs go to fuzz/work/<target> (git-ignored), crashes to fuzz/artifacts/<target>;
# the seeds in fuzz/corpus/<target> are read, never written.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(codec config search_filter cron_backoff api_json api_routes)

# cargo-fuzz needs nightly features; a stable toolchain may stand in with RUSTC_BOOTSTRAP.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi

dict_of() {
    case "$1" in
        config) echo dicts/config.dict ;;
        cron_backoff) echo dicts/cron.dict ;;
        codec) echo "" ;;
        *) echo dicts/json.dict ;;
    esac
}

for t in "${targets[@]}"; do
    mkdir -p "work/$t"
    dict="$(dict_of "$t")"
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1)
    [ -n "$dict" ] && args+=(-dict="$dict")
    # shellcheck disable=SC2206
    args+=(${FUZZ_ARGS:-})
    echo "== $t ($secs s)"
    # -s none: hearth is safe Rust, so a sanitizer adds cost and finds nothing libFuzzer's
    # panic detection does not; -a: overflow checks and debug assertions on.
    "${fuzz[@]}" run -s none -a "$t" "work/$t" "corpus/$t" -- "${args[@]}" || { echo "!! $t stopped on a finding: see artifacts/$t"; status=1; }
done
exit "${status:-0}"
