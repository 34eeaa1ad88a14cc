#!/usr/bin/env bash
# Export/predict parity: train, export the best epoch, score the test file
# with ctr-predict. fp32 scores equal the trainer's own test scores within
# 1e-5; an fp16 export's AUC is within 1e-4. On Frappe_x1 (DeepFM, AutoInt+,
# AutoInt, FCN, ECN, FinalMLP, FGCNN) and on generated Criteo-shaped data.
#   tests/export_parity_test.sh BUILD_DIR
set -uo pipefail
build="$(cd "$1" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap '[[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export CTRPS_BUILD_DIR="$build"
frappe="$root/../shared/data/frappe_x1"
[[ -f "$frappe/test.csv" ]] || fail "$frappe/test.csv is missing (the shared Frappe_x1 data)"

# Columns: trainer score, fp32 predictor score, fp16 predictor score, label.
compare() {
  python3 - "$@" <<'PY'
import sys
def auc(scores, labels):
    pairs = sorted(zip(scores, labels))
    pos = sum(labels); neg = len(labels) - pos
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]: j += 1
        r = (i + j + 1) / 2.0
        rank_sum += r * sum(l for _, l in pairs[i:j]); i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)
name, trained, p32, p16, labels = sys.argv[1:]
t = [float(x) for x in open(trained)]
a = [float(x) for x in open(p32)]
h = [float(x) for x in open(p16)]
y = [float(x) for x in open(labels)]
assert len(t) == len(a) == len(h) == len(y), (len(t), len(a), len(h), len(y))
diff = max(abs(x - z) for x, z in zip(t, a))
auc32, auc16 = auc(a, y), auc(h, y)
print(f"{name}: {len(t)} rows, max |trainer - fp32 predictor| = {diff:.2e}, AUC fp32 {auc32:.6f} fp16 {auc16:.6f}")
sys.exit(0 if diff <= 1e-5 and abs(auc32 - auc16) <= 1e-4 else 1)
PY
}

run_case() {
  local name=$1 conf=$2 test_file=$3 label_cmd=$4; shift 4
  local dir="$work/$name"
  timeout 600 "$root/launch/ctr-train" "$conf" --servers 2 --workers 1 --run-dir "$dir" \
    --set train.write_test_scores=true "$@" > "$dir.log" 2>&1 || { tail -20 "$dir.log"; fail "$name: training"; }
  grep "^\[export\]" "$dir.log" || fail "$name: no export"
  "$build/worker/ctr-predict" "$dir/export" --input "$test_file" --output "$dir/p32.txt" > "$dir.p32.log" 2>&1 \
    || { cat "$dir.p32.log"; fail "$name: ctr-predict fp32"; }
  local best
  best=$(grep -o 'from [^)]*' "$dir.log" | head -1 | cut -c6-)
  "$build/worker/ctr-export" "$best" "$dir/export16" --fp16 > "$dir.e16.log" 2>&1 || { cat "$dir.e16.log"; fail "$name: ctr-export --fp16"; }
  "$build/worker/ctr-predict" "$dir/export16" --input "$test_file" --output "$dir/p16.txt" > /dev/null 2>&1 \
    || fail "$name: ctr-predict fp16"
  eval "$label_cmd" > "$dir/labels.txt"
  compare "$name" "$dir/test_scores.txt" "$dir/p32.txt" "$dir/p16.txt" "$dir/labels.txt" || fail "$name: parity"
  echo "$name export sizes: fp32 $(du -sh "$dir/export" | cut -f1), fp16 $(du -sh "$dir/export16" | cut -f1)"
}

frappe_labels="tail -n +2 '$frappe/test.csv' | cut -d, -f1"
run_case frappe "$root/conf/frappe_x1_deepfm.pbtxt" "$frappe/test.csv" "$frappe_labels" \
  --set data.dir="$frappe" --set train.epochs=3
# The attention, cross-network and auxiliary-logit models, one epoch each.
run_case frappe_autoint_plus "$root/conf/frappe_x1_autoint_plus.pbtxt" "$frappe/test.csv" \
  "$frappe_labels" --set data.dir="$frappe" --set train.epochs=1 \
  --set model.autoint.attention_layers=2
run_case frappe_autoint "$root/conf/frappe_x1_autoint.pbtxt" "$frappe/test.csv" "$frappe_labels" \
  --set data.dir="$frappe" --set train.epochs=1 --set model.autoint.attention_layers=2
run_case frappe_fcn "$root/conf/frappe_x1_fcn.pbtxt" "$frappe/test.csv" "$frappe_labels" \
  --set data.dir="$frappe" --set train.epochs=1
run_case frappe_ecn "$root/conf/frappe_x1_ecn.pbtxt" "$frappe/test.csv" "$frappe_labels" \
  --set data.dir="$frappe" --set train.epochs=1 --set model.fcn.num_heads=5

# Models whose confs read a column twice (a second table per field):
# FinalMLP's feature-selection context, FGCNN's generation embeddings.
run_case frappe_finalmlp "$root/conf/frappe_x1_finalmlp.pbtxt" "$frappe/test.csv" "tail -n +2 '$frappe/test.csv' | cut -d, -f1" \
  --set data.dir="$frappe" --set train.epochs=1
run_case frappe_fgcnn "$root/conf/frappe_x1_fgcnn.pbtxt" "$frappe/test.csv" "tail -n +2 '$frappe/test.csv' | cut -d, -f1" \
  --set data.dir="$frappe" --set train.epochs=1

"$build/worker/data/ctr-datagen" --rows 100000 --max_cardinality 5000 --seed 5 --out "$work/d" > /dev/null 2>&1 || fail "ctr-datagen"
run_case generated "$root/conf/criteo_synth_deepfm.pbtxt" "$work/d.test.tsv" "cut -f1 '$work/d.test.tsv'" \
  --set data.dir="$work" --set train.epochs=2 --set train.batch_size=1024 --set model.hidden_units=[32]
echo "1 passed, 0 failed"
