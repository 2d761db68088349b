#!/usr/bin/env bash
# How much the fp16 ANE kernels cost in quality: the demo model (scripts/demo-model.json) trained
# on the demo corpus for the same steps, seed and data order on the cpu (fp32), on ane-sim with
# fp32 accumulation and on ane-sim with fp16 accumulation (ANE_SIM_ACCUM=fp16), in the modes
# given; prints the validation loss (cpu fp32 forward, spec/ane.md §6) and the gap to the cpu.
#   bench/ane_sim_quality.sh [STEPS] [MODES...]     (defaults: 200 full)
# Needs demo-out/train.bin and val.bin (made by scripts/demo.sh; made here if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-200}"
shift || true
MODES=("${@:-full}")
BIN="${ANE_BUILD_DIR:-build}"
OUT="${ANE_DEMO_DIR:-demo-out}"
if [ ! -s "$OUT/train.bin" ] || [ ! -s "$OUT/val.bin" ]; then
  ANE_DEMO_SECONDS=1 scripts/demo.sh >/dev/null
fi
echo "ane_sim_quality: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $STEPS steps of batch 8 x 128 tokens, $(nproc) threads"
run() {  # label, environment, flags...
  local label="$1" envs="$2"
  shift 2
  local log="$OUT/quality-${label// /-}.txt"
  env $envs "$BIN/ane-train/ane-train" --config scripts/demo-model.json --data "$OUT/train.bin" --val "$OUT/val.bin" \
    -o "$OUT/quality.bin" --force --steps "$STEPS" --batch 8 --lr 2e-3 --warmup 30 --eval-every 50 --seed 7 -q "$@" >"$log"
  local val ms
  val=$(grep '^val_loss:' "$log" | cut -d' ' -f2)
  ms=$(awk '/^training_seconds:/ { t = $2 } /^num_steps:/ { n = $2 } END { printf "%.0f", 1000 * t / n }' "$log")
  printf '%-28s val_loss %s  %6s ms/step' "$label" "$val" "$ms"
  if [ -n "${CPU_VAL:-}" ]; then awk -v a="$val" -v b="$CPU_VAL" 'BEGIN { printf "  gap %+.4f nats\n", a - b }'; else echo; CPU_VAL="$val"; fi
}
CPU_VAL=""
run "cpu fp32" "ANE_SIM_ACCUM=fp32" --device cpu
for m in "${MODES[@]}"; do
  run "ane-sim $m, fp32 accum" "ANE_SIM_ACCUM=fp32" --device ane-sim --ane-mode "$m"
  run "ane-sim $m, fp16 accum" "ANE_SIM_ACCUM=fp16" --device ane-sim --ane-mode "$m"
done
