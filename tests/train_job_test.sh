#!/usr/bin/env bash
# A whole training job under mpirun: 2 servers + 2 workers train DeepFM on
# generated data and must reach a test AUC threshold; a job whose data is
# missing (train, or only the test file) must stop quickly, before training,
# with the path in its message.
#   tests/train_job_test.sh BUILD_DIR
set -uo pipefail
build="$1"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$build/worker/data/ctr-datagen" --rows 200000 --max_cardinality 2000 --seed 7 --out "$work/d" > "$work/datagen.log" 2>&1 \
  || { cat "$work/datagen.log"; fail "ctr-datagen"; }
oracle=$(grep -o 'test.*oracle AUC [0-9.]*' "$work/datagen.log" | grep -o '[0-9.]*$' | tail -1)
CTRPS_BUILD_DIR="$build" timeout 300 "$root/launch/ctr-train" "$root/conf/criteo_synth_deepfm.pbtxt" \
  --servers 2 --workers 2 --run-dir "$work/run" \
  --set data.dir="$work" --set data.train=d.train.tsv --set data.valid=d.valid.tsv --set data.test=d.test.tsv \
  --set train.epochs=2 --set train.batch_size=1024 --set model.hidden_units=[64,64] > "$work/train.log" 2>&1 \
  || { tail -30 "$work/train.log"; fail "training job exited non-zero"; }
[[ -s "$work/run/metrics.jsonl" ]] || fail "no metrics.jsonl"
grep -q '"split": "valid"' "$work/run/metrics.jsonl" || fail "no validation line in metrics.jsonl"
auc=$(grep -o '"test_auc": [0-9.]*' "$work/run/summary.json" | grep -o '[0-9.]*$')
echo "test AUC $auc (oracle $oracle)"
awk -v a="$auc" 'BEGIN { exit !(a > 0.70) }' || fail "test AUC $auc is not above 0.70"

start=$(date +%s)
CTRPS_BUILD_DIR="$build" timeout 120 "$root/launch/ctr-train" "$root/conf/criteo_synth_deepfm.pbtxt" \
  --servers 1 --workers 2 --run-dir "$work/bad" --set data.dir=/nonexistent/data > "$work/bad.log" 2>&1
rc=$?
(( rc != 0 )) || fail "a job with missing data exited 0"
(( rc != 124 )) || fail "a job with missing data hung"
grep -q "/nonexistent/data/d.train.tsv" "$work/bad.log" || { cat "$work/bad.log"; fail "the error does not name the missing file"; }
echo "missing data: stopped in $(( $(date +%s) - start )) s with: $(grep -m1 nonexistent "$work/bad.log")"

# Only the test file is missing: found before the first step, not after
# the whole run.
CTRPS_BUILD_DIR="$build" timeout 120 "$root/launch/ctr-train" "$root/conf/criteo_synth_deepfm.pbtxt" \
  --servers 1 --workers 1 --run-dir "$work/notest" \
  --set data.dir="$work" --set data.train=d.train.tsv --set data.valid=d.valid.tsv --set data.test=gone.tsv \
  > "$work/notest.log" 2>&1
(( $? != 0 )) || fail "a job with a missing test file exited 0"
grep -q "gone.tsv" "$work/notest.log" || { tail "$work/notest.log"; fail "the error does not name the missing test file"; }
# An epoch here is shorter than a progress line's interval; its evaluation
# line is printed whatever the epoch's length.
if grep -q "\[valid\] epoch" "$work/notest.log"; then fail "a job with a missing test file trained first"; fi
echo "missing test file: stopped before training with: $(grep -m1 gone.tsv "$work/notest.log")"
# A poisoned run (learning rates that overflow the weights) stops at the
# first non-finite loss (or non-finite weights or gradients) with a clear
# message.
CTRPS_BUILD_DIR="$build" timeout 120 "$root/launch/ctr-train" "$root/conf/criteo_synth_deepfm.pbtxt" \
  --servers 1 --workers 1 --run-dir "$work/nan" \
  --set data.dir="$work" --set data.train=d.train.tsv --set data.valid=d.valid.tsv --set data.test=d.test.tsv \
  --set train.dense_optimizer.learning_rate=1e30 --set table_defaults.optimizer.learning_rate=1e30 \
  --set checkpoint.every_steps=1 > "$work/nan.log" 2>&1
(( $? != 0 )) || fail "a job whose loss went non-finite exited 0"
why="the training loss is|dense weights hold a NaN|is not finite; nothing was applied"
grep -Eq "$why" "$work/nan.log" || { tail "$work/nan.log"; fail "no clear message for a non-finite loss"; }
echo "non-finite loss: stopped with: $(grep -Eo "[^:]*($why)[^.;]*" "$work/nan.log" | head -1)"
echo "1 passed, 0 failed"
