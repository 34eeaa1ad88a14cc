#!/usr/bin/env bash
# A standalone ps_server's resident memory while a hostile client sends
# 1 GB frames and pulls whose replies it never reads (bench/ps_flood.cc).
# Prints the idle RSS (after a warm-up pull created the pulled rows), the
# peak during the flood, and whether the server still answers afterwards.
#   bench/flood_rss.sh BUILD_DIR [ps_flood flags...]
set -euo pipefail
build="$(cd "${1:?usage: bench/flood_rss.sh BUILD_DIR}" && pwd)"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/flood_rss.XXXXXX)"
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$build/ps/ctr-keygen" --out "$work/job.keys" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ep="tcp://127.0.0.1:$port"
"$build/ps/ps_server" --config "$root/conf/criteo_synth_deepfm.pbtxt" --shard 0 --run_dir "$work/run" \
  --set cluster.num_servers=1 --set "cluster.server_endpoint=[\"$ep\"]" \
  --set "cluster.security.key_file=\"$work/job.keys\"" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "listening" "$work/server.log" && break; sleep 0.1; done
grep -q "listening" "$work/server.log" || { cat "$work/server.log"; exit 1; }
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$server/status"; }
"$build/bench/ps_flood" --endpoint "$ep" --key_file "$work/job.keys" --table C1 --warm_only >/dev/null
sleep 1
idle=$(rss)
"$build/bench/ps_flood" --endpoint "$ep" --key_file "$work/job.keys" --table C1 --hold_seconds 8 "$@" &
flood=$!
peak=$idle
while kill -0 "$flood" 2>/dev/null; do
  r=$(rss); (( r > peak )) && peak=$r
  sleep 0.1
done
wait "$flood"
if "$build/bench/ps_flood" --endpoint "$ep" --key_file "$work/job.keys" --table C1 --warm_only >/dev/null; then
  answers=yes
else
  answers=no
fi
after=$(rss)
echo "flood_rss: server RSS idle ${idle} MB, peak ${peak} MB during the flood ($(awk -v p="$peak" -v i="$idle" 'BEGIN {printf "%.2f", p / i}')x idle), ${after} MB after; still answers: $answers"
