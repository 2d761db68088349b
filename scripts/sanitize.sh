#!/usr/bin/env bash
# Builds the suite with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/) and runs
# the tests there: every reader's truncated and corrupted inputs must fail cleanly, never crash.
# Arguments are passed to ctest (e.g. -R Gguf).
#
# On Linux the build is clang's at -O1 with libFuzzer's coverage (-DANE_FUZZ=ON): clang's UBSan
# checks more than GCC's (float-to-int overflow, calls through mistyped function pointers), -O1
# under clang compiles as fast as GCC's -O0 and runs the tests faster, and the same build serves
# `ANE_FUZZ_BUILD_DIR=build-asan scripts/fuzz.sh --runs N` (CI) without a second library build.
# Elsewhere (macOS: Apple's clang has no libFuzzer) it is the default compiler at -O0.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${ANE_ASAN_BUILD_DIR:-build-asan}"
config=(-DCMAKE_BUILD_TYPE=Debug -DANE_SANITIZE=ON -DANE_BUILD_BENCH=OFF)
if [ "$(uname)" = Linux ]; then
  scripts/setup.sh clang libclang-rt-14-dev libomp-14-dev
  export CC=clang CXX=clang++
  config+=(-DANE_FUZZ=ON "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -gline-tables-only")
  # A build directory configured with another compiler (GCC, before) is configured afresh.
  if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang++' "$BUILD_DIR/CMakeCache.txt"; then
    echo "sanitize: $BUILD_DIR was configured with another compiler; configuring it for clang" >&2
    rm -rf "$BUILD_DIR/CMakeCache.txt" "$BUILD_DIR/CMakeFiles"
  fi
else
  scripts/setup.sh
fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD_DIR" "${config[@]}" >/dev/null
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
