#!/usr/bin/env bash
# What the parameter server costs a training job: the
# DeepFM dense tower alone (dense_bench, one thread, no PS, no reader) and the
# whole job with 1 server + 1 worker (conf/bench_criteo_deepfm.pbtxt), run
# alternately ROUNDS times so that both see the same machine load; prints
# each pair's samples/s and their ratio, then the median ratio.
#
#   bench/train_overhead.sh [ROUNDS]     # default 3; run from the repo root
#
# Needs data/criteo_synth/d.*.tsv (build/worker/data/ctr-datagen --rows 2000000
# --out data/criteo_synth/d). CTRPS_BUILD_DIR picks the build (default build/).
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
rounds=${1:-3}
build=${CTRPS_BUILD_DIR:-$PWD/build}
[[ -f data/criteo_synth/d.train.tsv ]] || { echo "data/criteo_synth/d.train.tsv: missing (see --help)" >&2; exit 2; }
# The kernel set launch/ctr-train picks, so that both sides run the same GEMMs.
source launch/openblas_coretype.sh
json=$(mktemp)
trap 'rm -f "$json"' EXIT
ratios=()
for ((r = 1; r <= rounds; ++r)); do
  dense=$(OPENBLAS_NUM_THREADS=1 "$build/worker/nn/dense_bench" \
            --benchmark_filter=DeepFm --benchmark_min_time=3 --benchmark_out="$json" \
            --benchmark_out_format=json >/dev/null 2>&1 &&
          python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["benchmarks"][0]["samples_per_second"]))' \
            "$json")
  dir=runs/train_overhead_$r
  launch/ctr-train conf/bench_criteo_deepfm.pbtxt --servers 1 --workers 1 --run-dir "$dir" >/dev/null 2>&1 ||
    { echo "round $r: the job failed, see $dir/train.log" >&2; exit 1; }
  job=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["train_samples_per_sec"]))' "$dir/summary.json")
  ratio=$(python3 -c "print(f'{$job / $dense:.3f}')")
  ratios+=("$ratio")
  echo "round $r: dense alone $dense samples/s, job 1+1 $job samples/s, ratio $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print "median ratio " a[int((NR+1)/2)]}'
