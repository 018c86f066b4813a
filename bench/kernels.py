#!/usr/bin/python3
"""Kernel-level benchmark: GFLOP/s of nnc's dense and conv kernels (forward, dx, dw) at the shapes
of examples/fashion_mlp.nn and examples/fashion_cnn.nn, as a fraction of the machine's fp32 peak.

    bench/kernels.py [--threads 1 2] [--batch 64] [--steps 100] [--peak 268 544]

Compiles each model with build/nnc and runs `./model bench` (a synthetic batch, the per-kernel
profile of a training step; see bench/README.md), once per thread count. The peak defaults to the
issue's 268 GFLOP/s on one core of the 2-core Zen 5 development machine, 544 on both; the last
column compares with what bench/peak.c measures one core to deliver right now, times the threads."""
import argparse
import os
import subprocess
import tempfile

from bench import peak_per_core

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRODUCTS = ("dense ", "dense_dx ", "dense_dw ", "conv2d ", "conv2d_dx ", "conv2d_dw ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--peak", type=float, nargs=2, default=[268.0, 544.0], metavar=("ONE", "TWO"),
                    help="fp32 GFLOP/s on 1 and on 2 cores (more threads: TWO/2 per thread)")
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nnc-kernels-")
    measured = peak_per_core(work)
    print(f"measured FMA throughput of one core now (bench/peak.c): {measured:.1f} GFLOP/s")
    for model in ["mlp", "cnn"]:
        exe = os.path.join(work, model)
        subprocess.run([args.nnc, os.path.join(ROOT, "examples", f"fashion_{model}.nn"), "-o", exe], check=True)
        for threads in args.threads:
            peak = args.peak[0] if threads == 1 else args.peak[1] / 2 * threads
            out = subprocess.run([exe, "bench", "--batch", str(args.batch), "--steps", str(args.steps),
                                  "--threads", str(threads)], check=True, capture_output=True, text=True).stdout
            print(f"\n## fashion_{model}, batch {args.batch}, {threads} thread(s), peak {peak:.0f} GFLOP/s")
            print(out.splitlines()[1])
            print(f"| kernel | ms/step | MFLOP/step | GFLOP/s | of peak | of measured ({measured * threads:.0f}) |")
            print("|---|---|---|---|---|---|")
            for line in out.splitlines():
                if not line.startswith(PRODUCTS):
                    continue
                f = line.split()
                name, ms, mflop, gflops = " ".join(f[:2]), float(f[2]), float(f[4]), float(f[5])
                print(f"| {name} | {ms:.3f} | {mflop:.1f} | {gflops:.1f} | {100 * gflops / peak:.0f}% | "
                      f"{100 * gflops / (measured * threads):.0f}% |")


if __name__ == "__main__":
    main()
