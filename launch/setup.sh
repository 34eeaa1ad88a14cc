#!/usr/bin/env bash
# Installs every Debian 12 package ctrps needs (compiler and CMake included)
# and builds the project. Idempotent: safe to rerun. Works as root on a bare
# Debian 12; as another user it uses sudo when packages are missing.
#
#   launch/setup.sh            install what is missing, then build (Release)
#   launch/setup.sh --no-build install only
#   BUILD_DIR=... BUILD_TYPE=... launch/setup.sh
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
build_type="${BUILD_TYPE:-Release}"

packages=(
  build-essential cmake pkg-config git ca-certificates
  libzmq3-dev cppzmq-dev
  librocksdb-dev
  libprotobuf-dev protobuf-compiler
  libgflags-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libabsl-dev
  libopenblas-dev
  liburing-dev
  zlib1g-dev libzstd-dev
  openmpi-bin libopenmpi-dev
  python3
  clang-format
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if (( ${#missing[@]} > 0 )); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi

if [[ "${1:-}" == "--no-build" ]]; then exit 0; fi

jobs="$(nproc 2>/dev/null || echo 2)"
cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" >/dev/null
cmake --build "$build_dir" -j "$jobs"
