#!/usr/bin/env bash
# Fuzzes the suite's readers with libFuzzer (clang from Debian, ASan + UBSan).
#   scripts/fuzz.sh TARGET SECONDS     a campaign on one target (all: every target in turn)
#   scripts/fuzz.sh --runs N [TARGET]  at most N executions per target, 30 s at most, seed 1 (CI)
# Seed corpora are built in build-fuzz/corpus/TARGET from ../shared/data and small files the
# tools make. A crash is copied into tests/fuzz/regressions/TARGET/, which every test run
# replays (CTest: FuzzReplay.TARGET); fix the reader, then commit the input.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGETS=(blzt model_file gguf safetensors hf_folder llama2c artifact token_file config_json sentencepiece tokenize_text mil hf_tokenizer)

runs=""
if [ "${1:-}" = "--runs" ]; then runs="$2"; shift 2; fi
target="${1:-all}"
seconds="${2:-60}"
if [ "$target" = all ]; then selected=("${TARGETS[@]}"); else selected=("$target"); fi
for t in "${selected[@]}"; do
  [[ " ${TARGETS[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t' (known: ${TARGETS[*]})" >&2; exit 2; }
done

scripts/setup.sh clang libclang-rt-14-dev libomp-14-dev
BUILD="${ANE_FUZZ_BUILD_DIR:-build-fuzz}"
if grep -q '^ANE_FUZZ:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  # Already a fuzzing build (this script's own, or scripts/sanitize.sh's): kept as configured,
  # re-run so that targets added since the last run exist.
  cmake -S . -B "$BUILD" >/dev/null
else
  echo "fuzz: configuring $BUILD (clang, libFuzzer, ASan + UBSan)" >&2
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANE_FUZZ=ON -DANE_MPI=OFF \
    -DANE_ONEDNN=OFF -DANE_OBJC=OFF -DANE_BUILD_TESTS=OFF -DANE_BUILD_BENCH=OFF -DANE_NATIVE=OFF >/dev/null
fi
cmake --build "$BUILD" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${selected[@]}") >"$BUILD/build.log" 2>&1 ||
  { tail -40 "$BUILD/build.log" >&2; echo "fuzz: build failed ($BUILD/build.log)" >&2; exit 1; }

# Seeds: real files from ../shared/data and tiny ones made by the release tools.
SHARED="${ANE_SHARED_DATA:-$ROOT/../shared/data}"
BIN="${ANE_BUILD_DIR:-build}"
SEEDS="$BUILD/seeds"
if [ ! -f "$SEEDS/.done" ]; then
  rm -rf "$SEEDS" && mkdir -p "$SEEDS"
  cat >"$SEEDS/tiny.json" <<'JSON'
{"dim": 8, "hidden": 16, "heads": 2, "kv_heads": 1, "head_dim": 4, "seq": 16, "layers": 1, "vocab": 512}
JSON
  python3 -c "import struct,sys; sys.stdout.buffer.write(struct.pack('<2000H', *[(i*7)%300 for i in range(2000)]))" >"$SEEDS/tokens.bin"
  q=(-q --threads 1 --force)
  "$BIN/ane-train/ane-train" --config "$SEEDS/tiny.json" --data "$SEEDS/tokens.bin" -o "$SEEDS/tiny.bin" --steps 1 --eval-every 0 "${q[@]}" >/dev/null
  for family in qk_norm attention_bias; do  # Qwen3- and Qwen2-shaped models: their extras ride in the trailer
    sed "s/}\$/, \"$family\": true}/" "$SEEDS/tiny.json" >"$SEEDS/tiny-$family.json"
    "$BIN/ane-train/ane-train" --config "$SEEDS/tiny-$family.json" --data "$SEEDS/tokens.bin" -o "$SEEDS/tiny-$family.bin" --steps 1 --eval-every 0 "${q[@]}" >/dev/null
    "$BIN/ane-convert/ane-convert" export-gguf "$SEEDS/tiny-$family.bin" -o "$SEEDS/tiny-$family.gguf" -q --force
  done
  "$BIN/ane-mezo/ane-mezo" --init "$SEEDS/tiny.bin" --data "$SEEDS/tokens.bin" -o "$SEEDS/tiny-lora.bin" --lora split --lora-rank 2 --steps 1 --eval-every 0 "${q[@]}" >/dev/null
  if [ -f "$SHARED/stories260K-llama2c/tok512.bin" ]; then
    "$BIN/ane-convert/ane-convert" export-gguf "$SEEDS/tiny.bin" -o "$SEEDS/tiny.gguf" -t "$SHARED/stories260K-llama2c/tok512.bin" -q --force
  else
    "$BIN/ane-convert/ane-convert" export-gguf "$SEEDS/tiny.bin" -o "$SEEDS/tiny.gguf" -q --force
  fi
  "$BIN/ane-convert/ane-convert" export-gguf "$SEEDS/tiny.bin" -o "$SEEDS/tiny.q8.gguf" --type q8_0 -q --force
  "$BIN/ane-convert/ane-convert" export-gguf "$SEEDS/tiny.bin" -o "$SEEDS/tiny-gpt2.gguf" -q --force \
    -t "$ROOT/tests/fuzz/regressions/hf_tokenizer/seed-tiny-gpt2-style.json"
  "$BIN/ane-convert/ane-convert" export-hf "$SEEDS/tiny.bin" -o "$SEEDS/tiny-hf" -q --force
  "$BIN/ane-convert/ane-convert" pack "$SEEDS/tiny.bin" -o "$SEEDS/tiny.int8.zlib" -q --force
  "$BIN/ane-convert/ane-convert" pack "$SEEDS/tiny.bin" -o "$SEEDS/tiny.int8.zstd" --codec zstd -q --force
  "$BIN/ane-convert/ane-convert" tokens -t "$SHARED/stories260K-llama2c/tok512.bin" --format shard -q --force \
    -o "$SEEDS/shard.bin" <(head -c 3000 "$SHARED/corpus-tinystories-excerpt/tinystories_train_head.txt") 2>/dev/null || true
  "$BIN/ane-convert/ane-convert" mil "$SEEDS/tiny.bin" -o "$SEEDS/mil" --seq 4 -q --force
  touch "$SEEDS/.done"
fi
seed_files() {  # the seeds of one target, one path a line (absent ones skipped)
  case "$1" in
    blzt) ls "$SEEDS"/tiny.bin "$SEEDS"/tiny-lora.bin "$SEEDS"/tiny-qk_norm.bin "$SEEDS"/tiny-attention_bias.bin ;;
    model_file) ls "$SEEDS"/tiny.bin "$SEEDS"/tiny-lora.bin "$SEEDS"/tiny.gguf "$SEEDS"/tiny.int8.zlib "$SEEDS"/tiny-hf/model.safetensors ;;
    gguf) ls "$SEEDS"/tiny.gguf "$SEEDS"/tiny.q8.gguf "$SEEDS"/tiny-gpt2.gguf "$SEEDS"/tiny-qk_norm.gguf "$SEEDS"/tiny-attention_bias.gguf "$SHARED"/stories260K-gguf/stories260K.gguf ;;
    safetensors) ls "$SEEDS"/tiny-hf/model.safetensors ;;
    hf_folder) ls "$SEEDS"/tiny-hf/config.json ;;
    llama2c) ls "$SHARED"/stories260K-llama2c/tok512.bin "$SHARED"/stories260K-llama2c/stories260K.bin ;;
    artifact) ls "$SEEDS"/tiny.int8.zlib "$SEEDS"/tiny.int8.zstd ;;
    token_file) ls "$SEEDS"/tokens.bin "$SEEDS"/shard.bin ;;
    config_json) ls "$SEEDS"/tiny.json "$ROOT"/scripts/demo-model.json ;;
    sentencepiece) ls "$SHARED"/tokenizer-fineweb-sp1024/fineweb_1024_bpe.model ;;
    tokenize_text) ls "$SHARED"/corpus-tinystories-excerpt/tinystories_train_head.txt "$SHARED"/corpus-botchan/* ;;
    mil) ls "$SEEDS"/mil/*/model.mil ;;
  esac 2>/dev/null || true
}

total_crashes=0
for t in "${selected[@]}"; do
  corpus="$BUILD/corpus/$t"
  mkdir -p "$corpus" "$BUILD/crashes/$t" "tests/fuzz/regressions/$t"
  while read -r f; do
    [ -f "$f" ] || continue
    name="seed-$(basename "$(dirname "$f")")-$(basename "$f")"
    if [ "$t" = tokenize_text ]; then head -c 4000 "$f" >"$corpus/$name"; else cp "$f" "$corpus/$name"; fi
  done < <(seed_files "$t")
  if [ -n "$runs" ]; then limit=(-runs="$runs" -max_total_time=30 -seed=1); else limit=(-max_total_time="$seconds"); fi
  log="$BUILD/fuzz-$t.log"
  started=$(date +%s.%N)
  set +e
  ANE_SHARED_DATA="$SHARED" ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
    "$BUILD/tests/fuzz/fuzz_$t" "$corpus" "tests/fuzz/regressions/$t" -artifact_prefix="$BUILD/crashes/$t/" \
    -rss_limit_mb=3072 -malloc_limit_mb=2048 -timeout=30 -max_len=262144 -print_final_stats=1 "${limit[@]}" >"$log" 2>&1
  status=$?
  set -e
  elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  found=0
  for c in "$BUILD/crashes/$t"/*; do
    [ -f "$c" ] || continue
    cp "$c" "tests/fuzz/regressions/$t/$(basename "$c")"
    rm -f "$c"
    found=$((found + 1))
  done
  echo "fuzz: $t: $execs executions in ${elapsed}s, exit $status, $found new crash input(s)"
  if ((status != 0)); then
    grep -E "ERROR|finding|SUMMARY|runtime error" "$log" | head -5 >&2
    echo "fuzz: $t: see $log; the input is in tests/fuzz/regressions/$t/" >&2
    total_crashes=$((total_crashes + 1))
  fi
done
((total_crashes == 0)) || exit 1
