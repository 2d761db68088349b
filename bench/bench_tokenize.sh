#!/usr/bin/env bash
# Tokenizer speed, single-threaded, on the same text: ane-convert tokens (its own "speed" line,
# encoding only) against Hugging Face's tokenizers (the npm package's Rust core) on the same
# tokenizer.json, and against SentencePiece's spm_encode on Llama 2's tokenizer.model (ours
# reading the same vocabulary from llama.cpp's GGUF). Ratios are ours / theirs, measured in this run.
#   bench/bench_tokenize.sh [TEXT]    (default: War and Peace, 3.2 MB, from ../shared/data)
# Needs `npm install tokenizers@0.23.2` somewhere: set HF_TOKENIZERS_NODE_PATH to its node_modules
# (that column is skipped with a message otherwise). Nothing here is a dependency of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${ANE_SHARED_DATA:-../shared/data}"
TEXT="${1:-$SHARED/corpus-war-and-peace/war-and-peace.txt}"
BIN="${ANE_BUILD_DIR:-build}/ane-convert/ane-convert"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
export OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false

echo "bench_tokenize: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), 1 thread; $(wc -c <"$TEXT") bytes of $(basename "$TEXT")"
ours() {  # MB/s and token count of ane-convert tokens
  local report
  report=$("$BIN" tokens -t "$1" -o "$OUT/t.bin" --format shard32 --no-bos -f "$TEXT")
  echo "$(grep -o 'speed: [0-9.]*' <<<"$report" | cut -d' ' -f2) $(grep -o '[0-9]* tokens;' <<<"$report" | cut -d' ' -f1)"
}
printf "%-34s %10s %10s %10s %8s\n" tokenizer "ours MB/s" "theirs" "ratio" "same ids"
for name in tokenizer-qwen3 tokenizer-llama3; do
  tok="$SHARED/$name/tokenizer.json"
  read -r ours_speed ours_count < <(ours "$tok")
  if [ -n "${HF_TOKENIZERS_NODE_PATH:-}" ] && command -v node >/dev/null; then
    read -r hf_speed hf_count < <(NODE_PATH="$HF_TOKENIZERS_NODE_PATH" node bench/hf_tokenize.js "$tok" "$TEXT")
    printf "%-34s %10s %10s %10.2f %8s\n" "$name (HF tokenizers)" "$ours_speed" "$hf_speed" \
      "$(python3 -c "print($ours_speed / $hf_speed)")" "$([ "$ours_count" = "$hf_count" ] && echo yes || echo "no: $ours_count vs $hf_count")"
  else
    printf "%-34s %10s %10s\n" "$name" "$ours_speed" "(set HF_TOKENIZERS_NODE_PATH for HF tokenizers)"
  fi
done
# SentencePiece: the same Llama 2 vocabulary as spm_encode's .model and llama.cpp's GGUF.
spm_model="$SHARED/tokenizer-llama2-sentencepiece/tokenizer.model"
gguf="$SHARED/llamacpp-vocab-tests/ggml-vocab-llama-spm.gguf"
if command -v spm_encode >/dev/null && [ -f "$spm_model" ] && [ -f "$gguf" ]; then
  read -r ours_speed ours_count < <(ours "$gguf")
  best=""
  for _ in 1 2 3; do
    start=$(date +%s.%N)
    spm_encode --model="$spm_model" --output_format=id <"$TEXT" >"$OUT/spm.txt"
    t=$(python3 -c "print($(date +%s.%N) - $start)")
    best=$(python3 -c "print(min(${best:-1e9}, $t))")
  done
  spm_speed=$(python3 -c "print(round($(wc -c <"$TEXT") / 1e6 / $best, 2))")
  printf "%-34s %10s %10s %10.2f %8s\n" "llama2 spm (spm_encode, per line)" "$ours_speed" "$spm_speed" \
    "$(python3 -c "print($ours_speed / $spm_speed)")" "-"
else
  echo "llama2 SentencePiece: spm_encode or the Llama 2 tokenizer files are absent; skipped"
fi
