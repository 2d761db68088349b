#!/usr/bin/env bash
# The suite's main job on its default corpus, the King James Bible from Debian's bible-kjv
# package (no download): a SentencePiece BPE tokenizer of 1024 tokens, then training and
# validation token files. Outputs go to demo-out/ (or $ANE_DEMO_DIR).
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
