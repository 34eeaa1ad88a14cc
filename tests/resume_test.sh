#!/usr/bin/env bash
# Checkpoints that never lose a run:
#  1. kill -9 a server mid-epoch, resume (with a different number of
#     servers): every sample trained exactly once, test AUC within 0.002 of
#     an uninterrupted run;
#  2. the same with a worker killed;
#  3. a checkpoint interrupted before its manifest (a crash mid-checkpoint) is
#     ignored: the previous one loads;
#  4. a damaged newest checkpoint is refused, naming the problem and the next
#     older one.
#   tests/resume_test.sh BUILD_DIR
set -uo pipefail
build="$(cd "$1" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'pkill -9 -f "$work" 2>/dev/null; [[ -n "${KEEP:-}" ]] || rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
export CTRPS_BUILD_DIR="$build"

"$build/worker/data/ctr-datagen" --rows 200000 --max_cardinality 2000 --seed 11 --out "$work/d" > /dev/null 2>&1 || fail "ctr-datagen"
rows=$(wc -l < "$work/d.train.tsv")
common=(--set data.dir="$work" --set data.train=d.train.tsv --set data.valid=d.valid.tsv --set data.test=d.test.tsv
        --set train.epochs=2 --set train.patience=0 --set train.batch_size=1024 --set model.hidden_units=[32]
        --set checkpoint.every_steps=40 --set checkpoint.keep=2)
train() { timeout 300 "$root/launch/ctr-train" "$root/conf/criteo_synth_deepfm.pbtxt" "${common[@]}" "$@"; }
field() { grep -o "\"$2\": [0-9.]*" "$1/summary.json" | grep -o '[0-9.]*$'; }

train --servers 2 --workers 2 --run-dir "$work/full" > "$work/full.log" 2>&1 || { tail "$work/full.log"; fail "uninterrupted run"; }
full_auc=$(field "$work/full" test_auc)
echo "uninterrupted: test AUC $full_auc, $(field "$work/full" samples_trained) samples trained ($rows rows x 2 epochs)"

# Starts a run, kills one process of kind $1 once a checkpoint exists, resumes.
interrupt_and_resume() {
  local kind=$1 dir="$work/run-$1${2:+-$2}"
  train --servers 2 --workers 2 --run-dir "$dir" > "$dir.log" 2>&1 &
  local job=$!
  for _ in $(seq 600); do
    ls "$dir"/checkpoints/ckpt-*/manifest.pbtxt > /dev/null 2>&1 && break
    sleep 0.1
  done
  ls "$dir"/checkpoints/ckpt-*/manifest.pbtxt > /dev/null 2>&1 || fail "$kind: no checkpoint appeared"
  sleep 0.3
  local pid
  # The rank itself (argv[0] is the binary), not mpirun, whose command line
  # names both binaries too.
  pid=$(pgrep -f "^$build/[a-z]*/$kind .*--run_dir $dir" | head -1)
  [[ -n "$pid" ]] || fail "$kind: no process to kill (the run ended too soon)"
  kill -9 "$pid"
  wait "$job" && fail "$kind: the job survived kill -9 of its $kind"
  local ckpt
  ckpt=$(ls -d "$dir"/checkpoints/ckpt-* | sort -t- -k2 -n | tail -1)
  train --servers 3 --workers 2 --run-dir "$dir" --resume > "$dir.resume.log" 2>&1 \
    || { tail -20 "$dir.resume.log"; fail "$kind: resume failed"; }
  grep -q "^\[resume\]" "$dir.resume.log" || fail "$kind: did not resume"
  local auc samples
  auc=$(field "$dir" test_auc)
  samples=$(field "$dir" samples_trained)
  echo "$kind killed after $(basename "$ckpt"), resumed with 3 servers: test AUC $auc, $samples samples trained"
  (( samples == 2 * rows )) || fail "$kind: $samples samples trained, expected exactly $(( 2 * rows ))"
  awk -v a="$auc" -v b="$full_auc" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.002) }' \
    || fail "$kind: resumed AUC $auc is not within 0.002 of $full_auc"
}
interrupt_and_resume ps_server
interrupt_and_resume ctr_worker
# Servers over their memory limit, most rows in their spill logs, with small
# segments so that compaction runs throughout: killed mid-eviction or
# mid-compaction, the newest checkpoint still restores every row.
common+=(--set cluster.memory_limit_mb=3 --set cluster.spill_segment_mb=1)
interrupt_and_resume ps_server spilling

# 3. A newer checkpoint without a manifest (the crash came mid-checkpoint).
dir="$work/run-ps_server"
newest=$(ls -d "$dir"/checkpoints/ckpt-* | sort -t- -k2 -n | tail -1)
mkdir -p "$dir/checkpoints/ckpt-999999/server-0" && echo partial > "$dir/checkpoints/ckpt-999999/server-0/000001.sst"
train --servers 1 --workers 2 --run-dir "$dir" --resume --set train.epochs=3 > "$dir.partial.log" 2>&1 \
  || { tail "$dir.partial.log"; fail "resume next to a partial checkpoint failed"; }
grep -q "^\[resume\] $newest" "$dir.partial.log" || { grep resume "$dir.partial.log"; fail "did not resume from $newest"; }
echo "partial checkpoint ignored: resumed from $(basename "$newest")"

# 4. Damage the newest complete checkpoint.
newest=$(ls -d "$dir"/checkpoints/ckpt-*/manifest.pbtxt | xargs -n1 dirname | sort -t- -k2 -n | tail -1)
printf 'garbage' | dd of="$newest/dense.bin" bs=1 seek=8 conv=notrunc 2>/dev/null
train --servers 1 --workers 2 --run-dir "$dir" --resume --set train.epochs=4 > "$dir.damaged.log" 2>&1 \
  && fail "resumed from a damaged checkpoint"
grep -q "dense.bin: checksum mismatch" "$dir.damaged.log" || { tail "$dir.damaged.log"; fail "the damage is not named"; }
grep -q "resume from it with --resume_from" "$dir.damaged.log" || fail "the next older checkpoint is not offered"
echo "damaged checkpoint refused: $(grep -o 'the newest checkpoint is refused.*' "$dir.damaged.log" | head -1 | cut -c1-160)"
echo "1 passed, 0 failed"
