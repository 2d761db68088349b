#!/usr/bin/env bash
# The suite's main job on its default corpus, the King James Bible from Debian's bible-kjv
# package (no download): a SentencePiece BPE tokenizer of 1024 tokens, training and
# validation token files, then a small model (scripts/demo-model.json, 3.2M parameters)
# trained for about two minutes, evaluated, and sampled from. Outputs go to demo-out/.
# ANE_DEMO_SECONDS sets the training budget (default 120).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh bible-kjv

BIN="${ANE_BUILD_DIR:-build}"
OUT="${ANE_DEMO_DIR:-demo-out}"
mkdir -p "$OUT"

if [ ! -s "$OUT/kjv.txt" ]; then
  # One verse per line; drop the "Ge1:1 " references so the text is plain English.
  bible -f 'Gen1:1-Rev22:21' | sed -E 's/^[1-3]?[A-Za-z]+[0-9]+:[0-9]+ //' >"$OUT/kjv.txt.tmp"
  mv "$OUT/kjv.txt.tmp" "$OUT/kjv.txt"
fi
echo "corpus: $OUT/kjv.txt, $(wc -c <"$OUT/kjv.txt") bytes, $(wc -l <"$OUT/kjv.txt") verses"

if [ ! -s "$OUT/kjv1024.model" ]; then
  spm_train --input="$OUT/kjv.txt" --model_prefix="$OUT/kjv1024" --vocab_size=1024 --model_type=bpe \
    --character_coverage=1.0 --byte_fallback=true --num_threads="$(nproc)" --minloglevel=2 \
    >"$OUT/spm_train.log" 2>&1 || { cat "$OUT/spm_train.log" >&2; exit 1; }
fi
echo "tokenizer: $OUT/kjv1024.model (SentencePiece BPE, vocabulary 1024, byte fallback)"

"$BIN/ane-convert/ane-convert" tokens --force -t "$OUT/kjv1024.model" \
  -o "$OUT/train.bin" --val-fraction 0.1 --val-output "$OUT/val.bin" "$OUT/kjv.txt"
"$BIN/ane-convert/ane-convert" info "$OUT/train.bin"

SECONDS_BUDGET="${ANE_DEMO_SECONDS:-120}"
echo
echo "training scripts/demo-model.json for ${SECONDS_BUDGET}s on $(nproc) cores (validation loss every 50 steps):"
"$BIN/ane-train/ane-train" --config scripts/demo-model.json --data "$OUT/train.bin" --val "$OUT/val.bin" \
  -o "$OUT/model.bin" --force --steps 600 --time "$SECONDS_BUDGET" --batch 8 --lr 2e-3 --warmup 30 \
  --eval-every 50 --log-json "$OUT/train.jsonl" | tee "$OUT/train-report.txt"
first=$(grep -o '"val_loss":[0-9.]*' "$OUT/train.jsonl" | head -1 | cut -d: -f2)
last=$(grep -o '"val_loss":[0-9.]*' "$OUT/train.jsonl" | tail -1 | cut -d: -f2)
ids=$(grep -o '^compact_vocab: [0-9]*' "$OUT/train-report.txt" | cut -d' ' -f2)
printf 'validation loss during training (softmax over the %s ids in the data, as AutoANE): %.6f at the first evaluation -> %.6f at the last\n' \
  "$ids" "$first" "$last"
echo "checkpoint: $OUT/model.bin (best by validation: $OUT/model.best.bin)"

echo
echo "evaluating the best checkpoint on all held-out verses (plain windows of 128 tokens, softmax over the"
echo "full vocabulary of 1024, so a little above the training's figure; a uniform guess is ln 1024 = 6.931472):"
"$BIN/ane-eval/ane-eval" "$OUT/model.best.bin" --data "$OUT/val.bin" --tokenizer "$OUT/kjv1024.model" | grep -E "val_|speed"

echo
echo "generating from the trained model:"
"$BIN/ane-generate/ane-generate" "$OUT/model.best.bin" --tokenizer "$OUT/kjv1024.model" \
  --prompt "And God said" -n 60 --temperature 0.8 --top-k 40 --seed 42
