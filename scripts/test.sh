#!/usr/bin/env bash
# Sets up (installs, builds) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${ANE_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(getconf _NPROCESSORS_ONLN)" "$@"
