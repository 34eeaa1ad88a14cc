#!/usr/bin/env bash
# Whole-job speed of the sequence models at one history length (see
# docs/BENCHMARKS.md, sequence models): 1 server + 1 worker, batch 1024, dim 16, a
# few training steps without evaluation, history max_len set to L.
#
#   bench/sequence_speed.sh L STEPS MODEL...   # MODEL: meanpool, din, sdim (conf/seq_MODEL.pbtxt)
#   BATCH=256 bench/sequence_speed.sh ...      # another batch size (default 1024)
#
# Reads data/seqbenchL/d.{train,valid,test}.csv (ctr-datagen --mode=sequence
# --min_history L --max_history L); runs from the repo root; prints each run's
# [keys] and [done] lines (logs in runs/seq_bench_MODEL_L_bBATCH/train.log).
set -euo pipefail
(( $# >= 3 )) || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
L=$1 N=$2 batch=${BATCH:-1024}
shift 2
feats="[{name:\"user\"},{name:\"item\" table:\"item\" hash_as:\"item\"},"
feats+="{name:\"cate\" table:\"cate\" hash_as:\"cate\"},"
feats+="{name:\"hist_items\" kind:SEQUENCE table:\"item\" hash_as:\"item\" separator:\"^\" max_len:$L target:\"item\"},"
feats+="{name:\"hist_cates\" kind:SEQUENCE table:\"cate\" hash_as:\"cate\" separator:\"^\" max_len:$L target:\"cate\"}]"
for m in "$@"; do
  dir="runs/seq_bench_${m}_${L}_b$batch"
  launch/ctr-train "conf/seq_$m.pbtxt" --servers 1 --workers 1 --run-dir "$dir" \
    --set "data.dir=data/seqbench$L" --set "data.feature=$feats" --set "train.batch_size=$batch" \
    --set "train.max_steps=$N" --set train.skip_eval=true >/dev/null 2>&1 || echo "$m L=$L batch=$batch: failed, see $dir/train.log"
  echo "$m L=$L batch=$batch: $(grep -E '^\[(keys|done)\]' "$dir/train.log" | tr '\n' ' ')"
done
