#!/usr/bin/env bash
# The demo's training on 2 MPI ranks of this machine (one thread each), then the same model
# tuned with MeZO on 2 ranks and evaluated on 2 ranks. Needs the demo's token files
# (scripts/demo.sh makes them in demo-out/) and a build with MPI (scripts/setup.sh installs
# Open MPI). ANE_DEMO_SECONDS sets the training budget (default 60); ANE_MPI_RANKS the ranks (2).
# Across machines: see "Beyond one machine" in the README (a hostfile, the same paths).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

BIN="${ANE_BUILD_DIR:-build}"
OUT="${ANE_DEMO_DIR:-demo-out}"
RANKS="${ANE_MPI_RANKS:-2}"
if [ ! -s "$OUT/train.bin" ] || [ ! -s "$OUT/val.bin" ]; then
  echo "train-mpi: $OUT/train.bin and $OUT/val.bin are missing; run scripts/demo.sh first" >&2
  exit 1
fi
command -v mpirun >/dev/null || { echo "train-mpi: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }

# Ranks may outnumber cores here; root needs Open MPI's consent; containers often refuse the
# ptrace-based single-copy transport, so shared memory copies twice instead.
MPIRUN=(mpirun -np "$RANKS" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
export OMPI_MCA_btl_vader_single_copy_mechanism=none

SECONDS_BUDGET="${ANE_DEMO_SECONDS:-60}"
echo "training scripts/demo-model.json for ${SECONDS_BUDGET}s on $RANKS ranks x 1 thread (batch 4 each = 8 per update):"
"${MPIRUN[@]}" "$BIN/ane-train/ane-train" --config scripts/demo-model.json --data "$OUT/train.bin" \
  --val "$OUT/val.bin" -o "$OUT/model-mpi.bin" --force --steps 600 --time "$SECONDS_BUDGET" --batch 4 \
  --lr 2e-3 --warmup 30 --eval-every 50 --threads 1
echo
echo "MeZO on $RANKS ranks (each rank its own windows; two numbers exchanged per step):"
"${MPIRUN[@]}" "$BIN/ane-mezo/ane-mezo" --init "$OUT/model-mpi.bin" --data "$OUT/train.bin" --val "$OUT/val.bin" \
  -o "$OUT/model-mpi-mezo.bin" --force --steps 100 --lr 1e-5 --eval-every 100 --threads 1
echo
echo "evaluation on $RANKS ranks (the windows shared out; the same numbers as one rank):"
"${MPIRUN[@]}" "$BIN/ane-eval/ane-eval" "$OUT/model-mpi.bin" --data "$OUT/val.bin" -t "$OUT/kjv1024.model" --threads 1
