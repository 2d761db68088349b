#!/usr/bin/env bash
# Hugging Face or GGUF -> BLZT -> fine-tune -> int8 artifact -> GGUF, with the suite's tools.
#   scripts/convert-pipeline.sh [MODEL TOKENIZER TRAIN_TOKENS]
# MODEL is a Hugging Face folder (config.json + model.safetensors) or a llama-architecture
# .gguf; TOKENIZER the SentencePiece model its vocabulary comes from; TRAIN_TOKENS a token file
# made with it. Without arguments it uses scripts/demo.sh's outputs, first exported to a
# Hugging Face folder so that the whole path is exercised. Outputs go to pipeline-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${ANE_BUILD_DIR:-build}"
CONVERT="$BIN/ane-convert/ane-convert"
OUT="${ANE_PIPELINE_DIR:-pipeline-out}"
mkdir -p "$OUT"

if [ $# -eq 0 ]; then
  [ -s demo-out/model.bin ] || scripts/demo.sh
  "$CONVERT" export-hf demo-out/model.bin -o "$OUT/hf-in" --force
  set -- "$OUT/hf-in" demo-out/kjv1024.model demo-out/train.bin
fi
MODEL="$1" TOKENIZER="$2" DATA="$3"

if [ -d "$MODEL" ]; then
  "$CONVERT" hf "$MODEL" -o "$OUT/imported.bin" --force
else
  "$CONVERT" gguf "$MODEL" -o "$OUT/imported.bin" --force
fi
"$CONVERT" info "$OUT/imported.bin" | head -4

"$BIN/ane-train/ane-train" --init "$OUT/imported.bin" --data "$DATA" -o "$OUT/tuned.bin" --force \
  --steps "${ANE_PIPELINE_STEPS:-30}" --lr 3e-4 --warmup 5 --eval-every 10 --seq 128 | grep -E "val_loss|num_steps"

"$CONVERT" pack "$OUT/tuned.bin" -o "$OUT/tuned.int8.zlib" --force | grep -E "^wrote|^ratio|^worst"
"$CONVERT" unpack "$OUT/tuned.int8.zlib" -o "$OUT/tuned.unpacked.bin" --force
"$CONVERT" export-gguf "$OUT/tuned.unpacked.bin" -o "$OUT/tuned.gguf" --type q8_0 --tokenizer "$TOKENIZER" --force
"$CONVERT" info "$OUT/tuned.gguf" | head -4
