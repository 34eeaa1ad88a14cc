#!/usr/bin/env bash
# AutoInt+ against LR in whole training jobs (1 server + 1 worker each) on
# generated data whose clicks depend on pairwise interactions of the
# categorical fields: AutoInt+, which attends over the fields' embeddings beside a DNN,
# must beat LR's test AUC by a clear margin.
#   worker/nn/models/autoint_plus/autoint_plus_job_test.sh BUILD_DIR
set -uo pipefail
build="$1"
root="$(cd "$(dirname "$0")/../../../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$build/worker/data/ctr-datagen" --rows 300000 --max_cardinality 1000 --seed 3 --out "$work/d" \
  > "$work/datagen.log" 2>&1 || { cat "$work/datagen.log"; fail "ctr-datagen"; }
oracle=$(grep -o 'test.*oracle AUC [0-9.]*' "$work/datagen.log" | grep -o '[0-9.]*$' | tail -1)

train() {  # train NAME CONF [--set ...]
  local name="$1" conf="$2"
  shift 2
  CTRPS_BUILD_DIR="$build" timeout 300 "$root/launch/ctr-train" "$root/conf/$conf" \
    --servers 1 --workers 1 --run-dir "$work/$name" \
    --set data.dir="$work" --set data.train=d.train.tsv --set data.valid=d.valid.tsv \
    --set data.test=d.test.tsv --set train.epochs=2 --set train.batch_size=1024 "$@" \
    > "$work/$name.log" 2>&1 || { tail -30 "$work/$name.log"; fail "$name: training job exited non-zero"; }
  grep -o '"test_auc": [0-9.]*' "$work/$name/summary.json" | grep -o '[0-9.]*$'
}
lr=$(train lr criteo_synth_lr.pbtxt) || exit 1
model=$(train autoint_plus criteo_synth_deepfm.pbtxt --set model.type=AUTOINT_PLUS --set model.hidden_units=[64,64] --set model.batch_norm=false --set model.dropout=0 --set model.autoint.attention_layers=2 --set model.autoint.attention_dim=16 --set model.autoint.num_heads=2 --set model.autoint.use_scale=true) || exit 1
echo "test AUC: AutoInt+ $model, LR $lr (oracle $oracle)"
awk -v a="$model" -v b="$lr" 'BEGIN { exit !(a > b + 0.005) }' || fail "AutoInt+ ($model) does not beat LR ($lr) by 0.005"
echo "1 passed, 0 failed"
