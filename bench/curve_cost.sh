#!/usr/bin/env bash
# What CURVE (authentication + encryption, and the job's secret on every
# request) costs ps_bench's pull and push keys/s: runs with it off and on
# alternate, ROUNDS pairs in one run, and the median of each is printed.
#   bench/curve_cost.sh BUILD_DIR [ROUNDS] [ps_bench flags...]
# Defaults: 100k keys a request, dim 16, bulk data through the socket
# (--shared_memory_mb=0: a server on another host, the case CURVE is for).
set -euo pipefail
build="$(cd "${1:?usage: bench/curve_cost.sh BUILD_DIR [ROUNDS]}" && pwd)"
shift
rounds=3
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then rounds="$1"; shift; fi
run() {  # run CURVE [ps_bench flags...]
  local curve="$1"
  shift
  "$build/bench/ps_bench" --keys_per_request 100000 --dim 16 --table_rows 1000000 --seconds 5 \
    --shared_memory_mb 0 --curve="$curve" "$@" 2>/dev/null | grep '^{' |
    sed -E 's/.*"pull_keys_per_sec": ([0-9]+), "push_keys_per_sec": ([0-9]+).*/\1 \2/'
}
declare -a off_pull off_push on_pull on_push
for ((r = 0; r < rounds; ++r)); do
  read -r a b < <(run false "$@"); off_pull+=("$a"); off_push+=("$b")
  read -r a b < <(run true "$@"); on_pull+=("$a"); on_push+=("$b")
  echo "round $((r + 1)): off pull ${off_pull[-1]} push ${off_push[-1]}; on pull ${on_pull[-1]} push ${on_push[-1]} keys/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
op=$(median "${off_pull[@]}"); np=$(median "${on_pull[@]}")
os=$(median "${off_push[@]}"); ns=$(median "${on_push[@]}")
awk -v op="$op" -v np="$np" -v os="$os" -v ns="$ns" 'BEGIN {
  printf "curve_cost: pull %d -> %d keys/s (%.1f%% cost), push %d -> %d keys/s (%.1f%% cost)\n",
         op, np, 100 * (1 - np / op), os, ns, 100 * (1 - ns / os) }'
