#!/usr/bin/env python3
"""Data-parallel training on this machine and a model of it across machines.

1. Measured, in one run: `ane-train` tokens/s on 2 ranks x 1 thread (mpirun) against 1 rank
   x 2 threads, the same global batch, for the stories15M and stories110M shapes.
2. Communication per step: the gradient every rank sums (ring allreduce: each rank sends and
   receives 2(N-1)/N times it), for stories15M, stories110M and SmolLM2-360M.
3. A model of the step time on N machines at 10 and 100 Gbit/s: the per-rank compute time of
   a step, measured here at 1 thread, plus the allreduce time with no overlap at all (an
   upper bound: ane-train starts each layer's sum as soon as its backward is done).

Usage: python3 bench/bench_mpi.py [--build build] [--steps 6]
Prints the CPU model and the OpenBLAS kernels used; run it on an idle machine.
"""
import argparse
import os
import random
import re
import shutil
import struct
import subprocess
import tempfile

SHAPES = {  # dim, hidden, layers, heads, kv_heads, vocab, tied
    "stories15m": (288, 768, 6, 6, 6, 32000, True),
    "stories110m": (768, 2048, 12, 12, 12, 32000, True),
    "smollm2_360m": (960, 2560, 32, 15, 5, 49152, True),
}


def params(dim, hidden, layers, heads, kv_heads, vocab, tied):
    hd = dim // heads
    q, kv = heads * hd, kv_heads * hd
    layer = q * dim + 2 * kv * dim + dim * q + 3 * hidden * dim + 2 * dim
    return layers * layer + dim + vocab * dim * (1 if tied else 2)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        text = f.read()
    name = re.search(r"model name\s*:\s*(.*)", text)
    flags = re.search(r"flags\s*:\s*(.*)", text)
    isa = [f for f in ("avx512_bf16", "avx512f", "avx2") if flags and f in flags.group(1).split()]
    return (name.group(1) if name else "?"), (isa[0] if isa else "sse")


def run(cmd, env):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{r.stderr}")
    return r.stdout + r.stderr


def value(report, key):
    m = re.search(rf"^{key}: ([0-9.eE+-]+)", report, re.M)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--steps", type=int, default=6)
    args = ap.parse_args()
    train = os.path.join(args.build, "ane-train", "ane-train")
    model, isa = cpu_model()
    env = dict(os.environ, OMPI_MCA_btl_vader_single_copy_mechanism="none", OMP_WAIT_POLICY="passive")
    print(f"cpu: {model}; widest vector ISA: {isa}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    if not shutil.which("mpirun"):
        raise SystemExit("mpirun not found: apt-get install openmpi-bin")
    mpirun = "mpirun -np 2 --oversubscribe --bind-to none" + (" --allow-run-as-root" if os.geteuid() == 0 else "")

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "tokens.bin")
        # Random ids over the whole vocabulary: the compute of a step does not depend on them.
        rng = random.Random(1)
        with open(data, "wb") as f:
            f.write(struct.pack("<400000H", *(rng.randrange(32000) for _ in range(400000))))
        compute = {}
        print("\n| shape | global batch x seq | 1 rank x 2 threads tok/s | 2 ranks x 1 thread tok/s | ratio | 1 rank x 1 thread s/step (batch/2) |")
        print("|---|---|---|---|---|---|")
        for shape, batch, seq in (("stories15m", 8, 256), ("stories110m", 2, 256)):
            common = f" --preset {shape} --data {data} --seq {seq} --steps {args.steps} --eval-every 0 --warmup 1 -f --full-vocab"
            one = run(f"{train}{common} --batch {batch} --threads 2 -o {tmp}/one.bin", env)
            two = run(f"{mpirun} {train}{common} --batch {batch // 2} --threads 1 -o {tmp}/two.bin", env)
            single = run(f"{train}{common} --batch {batch // 2} --threads 1 -o {tmp}/single.bin", env)
            rate = lambda r: value(r, "total_tokens_M") * 1e6 / value(r, "training_seconds")
            r1, r2 = rate(one), rate(two)
            compute[shape] = value(single, "training_seconds") / args.steps
            kernels = re.search(r"kernels (\S+)", one)
            print(f"| {shape} | {batch} x {seq} | {r1:.0f} | {r2:.0f} | {r2 / r1:.2f} | {compute[shape]:.3f} |")
        print(f"\nOpenBLAS kernels: {kernels.group(1) if kernels else '?'}")

    print("\nCommunication per step (fp32 gradient, ring allreduce):")
    print("| shape | parameters | gradient MB | sent+received per rank, N=2 | N=64 |")
    print("|---|---|---|---|---|")
    grad = {}
    for shape, dims in SHAPES.items():
        n = params(*dims)
        grad[shape] = 4 * n
        print(f"| {shape} | {n / 1e6:.1f}M | {grad[shape] / 1e6:.1f} | {2 * grad[shape] * 1 / 2 / 1e6:.1f} MB each way |"
              f" {2 * grad[shape] * 63 / 64 / 1e6:.1f} MB each way |")

    print("\nModelled step time, no overlap (compute per rank as measured at 1 thread, batch/2):")
    print("| shape | link | " + " | ".join(f"N={n}" for n in (2, 4, 8, 16, 32, 64)) + " |")
    print("|---|---|" + "---|" * 6)
    for shape in ("stories15m", "stories110m"):
        for gbit in (10, 100):
            cells = []
            for n in (2, 4, 8, 16, 32, 64):
                comm = 2 * (n - 1) / n * grad[shape] * 8 / (gbit * 1e9)
                total = compute[shape] + comm
                cells.append(f"{total:.3f} s ({compute[shape] / total:.0%})")
            print(f"| {shape} | {gbit} Gbit/s | " + " | ".join(cells) + " |")
    print("\n(percent: the share of the step spent computing, i.e. the scaling efficiency against N x one rank)")


if __name__ == "__main__":
    main()
