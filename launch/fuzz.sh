#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs
# each from its seeds; fails on any crash, out-of-bounds access or undefined
# behaviour. Installs Debian's clang and libFuzzer runtime when missing.
#   launch/fuzz.sh                 each target 30 s (ctest -L fuzz)
#   launch/fuzz.sh --seconds 600   each target 10 minutes
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
seconds=30
if [[ "${1:-}" == "--seconds" ]]; then seconds="${2:?--seconds needs a number}"; fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
"$root/launch/setup.sh" --no-build
missing=()
for p in clang libclang-rt-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} > 0 )); then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTRPS_FUZZ=ON \
  -DCTRPS_FUZZ_SECONDS="$seconds" >/dev/null
cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target ps_request_fuzzer reader_fuzzer \
  make_request_seeds
cd "$build"
rc=0
ctest -L fuzz --output-on-failure -V >fuzz-ctest.log 2>&1 || rc=$?
grep -E "cov:|stat::|tests passed|FAIL" fuzz-ctest.log || true
exit $rc
