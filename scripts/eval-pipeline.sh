#!/usr/bin/env bash
# train -> pack -> eval on the default corpus: the float model's and the int8 artifact's
# validation bits-per-byte side by side, with the artifact's size. Uses scripts/demo.sh's
# outputs (running it first if needed). STRIDE (default 64) sets the sliding window.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${ANE_BUILD_DIR:-build}"
OUT="${ANE_DEMO_DIR:-demo-out}"
STRIDE="${STRIDE:-64}"
[ -s "$OUT/model.best.bin" ] || scripts/demo.sh

"$BIN/ane-convert/ane-convert" pack "$OUT/model.best.bin" -o "$OUT/model.int8.zlib" --force >/dev/null
eval_json() {
  "$BIN/ane-eval/ane-eval" "$1" --data "$OUT/val.bin" --tokenizer "$OUT/kjv1024.model" --stride "$STRIDE" --json -q
}
float_json=$(eval_json "$OUT/model.best.bin")
packed_json=$(eval_json "$OUT/model.int8.zlib")
field() { echo "$1" | grep -o "\"$2\":[^,}]*" | cut -d: -f2; }
checkpoint_bytes=$(stat -c %s "$OUT/model.best.bin")
# The checkpoint also holds the Adam moments (3x the weights); the fair comparison is the
# float32 weights alone.
params=$("$BIN/ane-convert/ane-convert" info --json "$OUT/model.best.bin" | grep -o '"params":[0-9]*' | cut -d: -f2)
weight_bytes=$((params * 4))
packed_bytes=$(stat -c %s "$OUT/model.int8.zlib")
seq=$(field "$float_json" seq)
printf '%-34s %12s %12s %14s\n' "model (seq $seq, stride $STRIDE)" "val_loss" "val_bpb" "bytes"
printf '%-34s %12.6f %12.6f %14d\n' "float32 weights" "$(field "$float_json" val_loss)" "$(field "$float_json" val_bpb)" "$weight_bytes"
printf '%-34s %12.6f %12.6f %14d\n' "int8 + zlib artifact" "$(field "$packed_json" val_loss)" "$(field "$packed_json" val_bpb)" "$packed_bytes"
printf 'the artifact is %.2fx smaller than the float32 weights (the training checkpoint, with its Adam moments: %d bytes)\n' \
  "$(awk -v a="$weight_bytes" -v b="$packed_bytes" 'BEGIN { print a / b }')" "$checkpoint_bytes"
echo "scored tokens: $(field "$float_json" tokens), bytes: $(field "$float_json" bytes)"
