#!/usr/bin/env bash
# Builds the suite with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/) and runs
# the tests there: every reader's truncated and corrupted inputs must fail cleanly, never crash.
# Arguments are passed to ctest (e.g. -R Gguf).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR="${ANE_ASAN_BUILD_DIR:-build-asan}"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DANE_SANITIZE=ON -DANE_BUILD_BENCH=OFF >/dev/null
fi
if ! cmake --build "$BUILD_DIR" -j "$(getconf _NPROCESSORS_ONLN)" >"$BUILD_DIR/build.log" 2>&1; then
  cat "$BUILD_DIR/build.log" >&2
  exit 1
fi
cd "$BUILD_DIR"
# Leak reports are on; the first error stops a test so that CI shows it.
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
ctest --output-on-failure -j "$(getconf _NPROCESSORS_ONLN)" "$@"
