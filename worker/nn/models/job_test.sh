#!/usr/bin/env bash
# A model against LR in whole training jobs (1 server + 1 worker each) on
# generated data whose clicks depend on pairwise interactions of the
# categorical fields: the model must beat LR's test AUC by 0.005.
#
#   job_test.sh setup BUILD_DIR WORK_DIR          generate the data, train LR once
#   job_test.sh run BUILD_DIR WORK_DIR NAME SET...  train NAME with each SET as
#                                                   --set (on criteo_synth_deepfm)
#   job_test.sh cleanup WORK_DIR
#
# ctest runs `setup` once as the fixture of every <name>_job_test, made from
# <name>/job_test.args (one --set value a line, # comments).
set -uo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" || $# -lt 2 ]]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  [[ $# -lt 2 ]] && [[ "${1:-}" != "--help" && "${1:-}" != "-h" ]] && exit 2
  exit 0
fi
step="$1"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
fail() { echo "FAIL: $*"; exit 1; }

if [[ "$step" == cleanup ]]; then
  rm -rf "$2"
  exit 0
fi
build="$2"
work="$3"

train() {  # train NAME CONF [--set ...]
  local name="$1" conf="$2"
  shift 2
  rm -rf "$work/$name"
  CTRPS_BUILD_DIR="$build" timeout 300 "$root/launch/ctr-train" "$root/conf/$conf" \
    --servers 1 --workers 1 --run-dir "$work/$name" \
    --set data.dir="$work" --set data.train=d.train.tsv --set data.valid=d.valid.tsv \
    --set data.test=d.test.tsv --set train.epochs=2 --set train.batch_size=1024 "$@" \
    > "$work/$name.log" 2>&1 || { tail -30 "$work/$name.log"; fail "$name: training job exited non-zero"; }
  grep -o '"test_auc": [0-9.]*' "$work/$name/summary.json" | grep -o '[0-9.]*$'
}

case "$step" in
  setup)
    rm -rf "$work" && mkdir -p "$work"
    "$build/worker/data/ctr-datagen" --rows 300000 --max_cardinality 1000 --seed 3 --out "$work/d" \
      > "$work/datagen.log" 2>&1 || { cat "$work/datagen.log"; fail "ctr-datagen"; }
    grep -o 'test.*oracle AUC [0-9.]*' "$work/datagen.log" | grep -o '[0-9.]*$' | tail -1 \
      > "$work/oracle_auc"
    lr=$(train lr criteo_synth_lr.pbtxt) || exit 1
    echo "$lr" > "$work/lr_auc"
    echo "test AUC: LR $lr (oracle $(cat "$work/oracle_auc"))"
    ;;
  run)
    name="$4"
    shift 4
    [[ -s "$work/lr_auc" ]] || fail "$work/lr_auc: missing (run the setup step first)"
    lr=$(cat "$work/lr_auc")
    sets=()
    for s in "$@"; do sets+=(--set "$s"); done
    model=$(train "$name" criteo_synth_deepfm.pbtxt "${sets[@]}") || exit 1
    echo "test AUC: $name $model, LR $lr (oracle $(cat "$work/oracle_auc"))"
    awk -v a="$model" -v b="$lr" 'BEGIN { exit !(a > b + 0.005) }' ||
      fail "$name ($model) does not beat LR ($lr) by 0.005"
    echo "1 passed, 0 failed"
    ;;
  *) fail "unknown step \"$step\" (setup, run or cleanup)" ;;
esac
