#!/usr/bin/env bash
# Installs what is missing from Debian's packages and builds the suite into build/.
# Idempotent: with everything installed and nothing changed, it is a no-op build check.
# Extra packages a caller needs (demo.sh adds bible-kjv) can be given as arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

CMAKE_EXTRA=()
if [ "$(uname)" = Darwin ]; then
  # macOS: Homebrew's packages; BLAS is Accelerate's CBLAS (no OpenBLAS needed) and the `ane`
  # device is built with Foundation and IOSurface. Apple's clang needs Homebrew's libomp.
  BREW_PACKAGES=(cmake pkg-config zlib zstd nlohmann-json cli11 googletest google-benchmark sentencepiece pcre2 utf8proc libomp "$@")
  if ! command -v brew >/dev/null; then
    echo "setup: macOS needs Homebrew (https://brew.sh) for: ${BREW_PACKAGES[*]}" >&2
    exit 1
  fi
  missing=()
  for p in "${BREW_PACKAGES[@]}"; do brew list --versions "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "setup: brew install ${missing[*]}" >&2
    brew install "${missing[@]}"
  fi
  CMAKE_EXTRA=(-DOpenMP_ROOT="$(brew --prefix libomp)")
else
  PACKAGES=(
    build-essential cmake pkg-config
    libopenblas-openmp-dev zlib1g-dev libzstd-dev nlohmann-json3-dev libcli11-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    libsentencepiece-dev sentencepiece
    libpcre2-dev libutf8proc-dev  # byte-level BPE tokenizers: pre-tokenizer regexes, NFC
    gobjc++ libgnustep-base-dev  # the `ane` runtime and the stand-in framework its tests load
    libopenmpi-dev openmpi-bin  # data-parallel runs under mpirun (optional in the build)
    libdnnl-dev  # oneDNN: the second GEMM library (JIT for AVX2/AVX-512) and bf16 products
    qemu-user  # tests only: the AVX2 and baseline kernel variants run emulated on an AVX-512 machine
    "$@"
  )

  missing=()
  for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  # Another apt (unattended upgrades, a second terminal) may hold its locks: wait for it with a
  # message instead of failing with apt's own error.
  LOCK_WAIT_SECONDS="${ANE_APT_LOCK_WAIT:-900}"
  apt_update_waiting() {
    local waited=0 out
    while :; do
      if out=$($SUDO apt-get update -qq 2>&1); then return 0; fi
      if ! grep -q "Could not get lock" <<<"$out" || ((waited >= LOCK_WAIT_SECONDS)); then
        echo "$out" >&2
        return 1
      fi
      ((waited == 0)) && echo "setup: another apt holds its lock ($(grep -o 'held by process [0-9]* ([^)]*)' <<<"$out" | head -1)); waiting up to ${LOCK_WAIT_SECONDS}s" >&2
      sleep 5
      waited=$((waited + 5))
    done
  }

  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    apt_update_waiting
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      -o DPkg::Lock::Timeout="$LOCK_WAIT_SECONDS" "${missing[@]}" >/dev/null
  fi
fi

BUILD_DIR="${ANE_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  echo "setup: configuring $BUILD_DIR; the first build takes about 3 minutes on 2 cores (later ones only rebuild what changed)" >&2
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${CMAKE_EXTRA[@]}" ${ANE_CMAKE_ARGS:-} >/dev/null
fi
mkdir -p "$BUILD_DIR"
# CMake's percentage lines go to stderr as the build runs; the whole log to build.log.
set +e
cmake --build "$BUILD_DIR" -j "$(getconf _NPROCESSORS_ONLN)" 2>&1 | tee "$BUILD_DIR/build.log" |
  grep --line-buffered -E '^\[ *[0-9]+%\] (Building|Linking)' | sed -u 's/^/setup: /' >&2
status=${PIPESTATUS[0]}
set -e
if ((status != 0)); then
  grep -E "error|Error" "$BUILD_DIR/build.log" | head -40 >&2
  echo "setup: build failed (the whole log: $BUILD_DIR/build.log)" >&2
  exit 1
fi
grep -E "warning:" "$BUILD_DIR/build.log" >&2 || true
