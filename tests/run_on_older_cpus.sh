#!/usr/bin/env bash
# The numerical kernels that the loader or our own dispatch picks per CPU (AVX-512, AVX2 + FMA,
# baseline x86-64) are tested on this machine's best one by the plain run. This runs the same
# tests under QEMU's user-mode emulator as a Haswell (AVX2, no AVX-512) and as a Nehalem (SSE4.2,
# no AVX), so that the other variants run against the same references.
# Usage: run_on_older_cpus.sh ane_tests [why not]
# Exit 77 (skipped) when CMake gives a reason not to (a -march=native build, whose every
# function may use this machine's instructions; a sanitized one, whose shadow memory the
# emulator cannot map), without qemu-x86_64 (Debian: qemu-user), or off x86-64.
set -uo pipefail
tests=$1
if [ -n "${2:-}" ]; then echo "skipped: $2"; exit 77; fi
if [ "$(uname -m)" != x86_64 ]; then echo "skipped: not an x86-64 machine"; exit 77; fi
if ! command -v qemu-x86_64 >/dev/null; then
  echo "skipped: qemu-x86_64 not found (apt-get install qemu-user)"
  exit 77
fi
status=0
run_as() {  # cpu filter
  echo "== as a $1"
  # TCG warns about every CPUID bit of the model it does not emulate: noise.
  OMP_NUM_THREADS=2 qemu-x86_64 -cpu "$1" "$tests" --gtest_filter="$2" --gtest_brief=1 \
    2> >(grep -v "TCG doesn't support requested feature" >&2) || status=1
}
# The pool's timing tests (Matvec.APool*) test no kernel, and emulated time is not a machine's.
run_as Haswell 'Half.*:Matvec.*:Quant.*:Kernels.*:Optim.*:Gemm.*:Perturb.*-Matvec.APool*'
# As a Nehalem, only what never reaches OpenBLAS: OPENBLAS_CORETYPE (Haswell in this
# environment, left as it is) would run AVX2 kernels the emulated CPU does not have.
run_as Nehalem 'Half.*:Matvec.*:Kernels.*:Optim.*:Perturb.*:Quant.TheRows8*-Kernels.Attention*:Matvec.APool*'
exit $status
