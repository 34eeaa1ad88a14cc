#!/usr/bin/env bash
# Training throughput of models on Criteo-shaped data, one after another in
# the same session: each conf/bench_criteo_<model>.pbtxt with 2 servers + 2
# workers; prints the trainer's [done] samples/s and, from a perf profile of
# one worker (perf record -F 499 for 10 s after warm-up), the share of the
# dense tower's time spent in BLAS: samples in libopenblas over samples in
# libopenblas plus the ctrps::nn code (layers, graph, losses, optimizer).
#
#   bench/model_throughput.sh MODEL...    # e.g. deepfm autoint_plus fcn; from the repo root
#
# Needs data/criteo_synth/d.*.tsv (build/worker/data/ctr-datagen --rows 2000000
# --out data/criteo_synth/d) and perf. CTRPS_BUILD_DIR picks the build (default build/).
set -uo pipefail
[[ ${1:-} == -h || ${1:-} == --help || $# -eq 0 ]] && { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
export CTRPS_BUILD_DIR=${CTRPS_BUILD_DIR:-$PWD/build}
[[ -f data/criteo_synth/d.train.tsv ]] || { echo "data/criteo_synth/d.train.tsv: missing (see --help)" >&2; exit 2; }
for model in "$@"; do
  dir=runs/bench_$model
  rm -rf "$dir"
  launch/ctr-train "conf/bench_criteo_$model.pbtxt" --run-dir "$dir" > "$dir.log" 2>&1 &
  job=$!
  pid=""
  for _ in $(seq 60); do
    sleep 1
    grep -q "^\[train\]" "$dir.log" 2>/dev/null && pid=$(pgrep -n -f "ctr_worker.*$dir" | head -1)
    [[ -n "$pid" ]] && break
  done
  share="n/a"
  if [[ -n "$pid" ]] && command -v perf >/dev/null; then
    perf record -F 499 -g -o "$dir.perf" -p "$pid" -- sleep 10 > /dev/null 2>&1
    share=$(perf report -i "$dir.perf" --stdio --no-children --sort dso,sym 2>/dev/null | python3 -c '
import re, sys
blas = nn = 0.0
for line in sys.stdin:
    m = re.match(r"\s+([0-9.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
    if not m: continue
    pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
    if "openblas" in dso or "blas" in dso: blas += pct
    elif "ctrps::nn::" in sym: nn += pct
print(f"{100 * blas / (blas + nn):.1f}% ({blas:.1f}% of the worker in BLAS, {nn:.1f}% in ctrps::nn)" if blas + nn > 0 else "n/a")
')
  fi
  wait "$job"
  rc=$?
  rate=$(grep -o '[0-9.]* samples/s training' "$dir.log" | tail -1 | cut -d' ' -f1)
  echo "$model: rc $rc, ${rate:-?} samples/s, dense time in BLAS: $share"
done
