#!/usr/bin/env bash
# Every user-facing command answers --help (and -h) with exit code 0 and its
# own flags, not the logging library's; a misspelt flag fails with an error
# that names it.
#   tests/help_test.sh BUILD_DIR
set -uo pipefail
build="$(cd "$1" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# binary, then a flag of its own that --help must list
check_tool() {
  local bin="$build/$1" own="$2"
  [[ -x "$bin" ]] || { fail "$bin was not built"; return; }
  for h in --help -h; do
    "$bin" "$h" >"$out" 2>&1
    local rc=$?
    [[ $rc -eq 0 ]] || fail "$1 $h exited $rc"
    grep -q -- "-$own " "$out" || fail "$1 $h does not list its flag --$own"
    grep -q -- "-log_dir" "$out" && fail "$1 $h lists the logging library's flags (that is --helpfull's job)"
  done
  "$bin" --no_such_flag_xyz >"$out" 2>&1
  local rc=$?
  [[ $rc -ne 0 ]] || fail "$1 --no_such_flag_xyz exited 0"
  grep -q "no_such_flag_xyz" "$out" || fail "$1 --no_such_flag_xyz: the error does not name the flag"
}

check_tool ps/ps_server config
check_tool ps/ctr-keygen out
check_tool worker/ctr_worker config
check_tool worker/ctr-export fp16
check_tool worker/ctr-predict batch_size
check_tool worker/data/ctr-datagen rows
check_tool bench/ps_bench keys_per_request
check_tool bench/checkpoint_bench rows
check_tool bench/vm_probe parts

# The launcher scripts (no build needed for --help).
for script in launch/setup.sh launch/test.sh launch/fuzz.sh launch/ctr-train launch/check-format launch/compare-metrics; do
  "$root/$script" --help >"$out" 2>&1
  rc=$?
  [[ $rc -eq 0 && -s "$out" ]] || fail "$script --help exited $rc or printed nothing"
done

[[ $failures -eq 0 ]] || exit 1
echo "every command answers --help"
