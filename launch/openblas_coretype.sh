# Sourced by launch/ctr-train and bench scripts. Debian's OpenBLAS falls back
# to its slowest (Prescott) kernels on CPUs it does not recognise, such as
# many VMs; unless the caller chose, name the kernels the CPU flags allow.
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
  if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then export OPENBLAS_CORETYPE=Haswell
  fi
fi
