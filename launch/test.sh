#!/usr/bin/env bash
# Sets up (installs packages, builds) and runs every test with ctest.
#   launch/test.sh [ctest args...]     e.g. launch/test.sh -L unit
#   launch/test.sh --fuzz [--seconds N]   the libFuzzer targets instead (launch/fuzz.sh)
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "${1:-}" == "--fuzz" ]]; then
  shift
  exec "$root/launch/fuzz.sh" "$@"
fi
"$root/launch/setup.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$root/build"
ctest --output-on-failure --timeout 600 -j 2 "$@"
