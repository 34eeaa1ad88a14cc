#!/usr/bin/env bash
# Runs one fuzz target from its seeds for SECONDS; fails on any finding.
#   fuzz/run_fuzzer.sh BUILD_FUZZ_DIR ps_request|reader SECONDS
# Prints libFuzzer's final line (executions, coverage) and keeps the corpus
# in BUILD_FUZZ_DIR/corpus/<target>.
set -euo pipefail
dir="$1" target="$2" seconds="$3"
src="$(cd "$(dirname "$0")" && pwd)"
corpus="$dir/corpus/$target"
mkdir -p "$corpus"
case "$target" in
  ps_request) "$dir/make_request_seeds" "$corpus" >/dev/null ;;
  reader)
    # One seed per reader: a manifest, an embedding file header, a config.
    printf '\x00global_step: 7\nnum_servers: 1\n' >"$corpus/manifest"
    cp "$src/../conf/"*.pbtxt "$corpus/" 2>/dev/null || true
    for f in "$corpus"/*.pbtxt; do { printf '\x02'; cat "$f"; } >"$f.seed" && rm "$f"; done
    ;;
esac
log="$dir/fuzz-$target.log"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
if ! "$dir/${target}_fuzzer" -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 \
     -artifact_prefix="$dir/" "$corpus" >"$log" 2>&1; then
  tail -60 "$log"
  echo "FAIL: ${target}_fuzzer found a crash (artifact in $dir)"
  exit 1
fi
grep -E "^#[0-9]+.*(DONE|cov:)" "$log" | tail -1
grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$log"
