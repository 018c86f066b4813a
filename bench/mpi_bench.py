#!/usr/bin/python3
"""Data-parallel throughput: the Fashion-MNIST MLP (examples/fashion_mlp.nn) trained by
  1 rank  x 1 thread    ./mlp train --threads 1                       (the baseline)
  1 rank  x 2 threads   ./mlp train --threads 2
  2 ranks x 1 thread    mpirun -np 2 ./mlp_mpi train --threads 1      (nnc --mpi)
on the full training set, for each batch size given. Prints samples/s (median over epochs 2..N,
or epoch 1 when N = 1, from the runs' --log) and, per step, the compute time of one process
against the extra time the 2-rank run spends (allreduce of the gradients plus waiting).

    bench/mpi_bench.py [--build build] [--epochs 3] [--batch 64 256]

Needs a build with MPI (libnnrt_mpi.a) and Debian's dataset-fashion-mnist. Wall-clock numbers:
run it on an otherwise idle machine."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TRAIN_EXAMPLES = 60000
PARAMS = 235146  # fashion_mlp's trainable parameters: the float32 gradient allreduced per step


def mpirun(np_):
    return ["mpirun", "-np", str(np_), "--oversubscribe", "--bind-to", "none",
            "--mca", "btl_vader_single_copy_mechanism", "none"]


def env():
    e = dict(os.environ)
    if os.geteuid() == 0:
        e["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        e["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    return e


def samples_per_sec(cmd, log, epochs):
    if os.path.exists(log):
        os.remove(log)
    subprocess.run(cmd + ["--epochs", str(epochs), "--validate", "none", "--quiet", "--log", log],
                   check=True, env=env(), stdout=subprocess.DEVNULL)
    with open(log) as f:
        rates = [json.loads(line)["samples_per_sec"] for line in f]
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    args = ap.parse_args()
    nnc = os.path.join(args.build, "nnc")
    work = tempfile.mkdtemp(prefix="nnc-mpi-bench-")
    source = os.path.join(ROOT, "examples", "fashion_mlp.nn")
    plain, mpi = os.path.join(work, "mlp"), os.path.join(work, "mlp_mpi")
    subprocess.run([nnc, source, "-o", plain], check=True)
    subprocess.run([nnc, "--mpi", source, "-o", mpi], check=True)
    log = os.path.join(work, "log.jsonl")
    print(f"fashion_mlp, {TRAIN_EXAMPLES} examples, {args.epochs} epochs, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    print(f"{'batch':>6} {'1x1 samples/s':>14} {'1x2 samples/s':>14} {'2x1 samples/s':>14} "
          f"{'2x1 / 1x2':>10} {'compute ms/step':>16} {'2x1 extra ms/step':>18}")
    for b in args.batch:
        one = samples_per_sec([plain, "train", "--batch", str(b), "--threads", "1"], log, args.epochs)
        threads = samples_per_sec([plain, "train", "--batch", str(b), "--threads", "2"], log, args.epochs)
        ranks = samples_per_sec(mpirun(2) + [mpi, "train", "--batch", str(b), "--threads", "1"], log,
                                args.epochs)
        compute = b / one * 1e3  # one process, one thread, whole batch
        extra = b / ranks * 1e3 - compute / 2  # what 2 ranks spend beyond their half of the work
        print(f"{b:>6} {one:>14.0f} {threads:>14.0f} {ranks:>14.0f} {ranks / threads:>10.2f} "
              f"{compute:>16.2f} {extra:>18.2f}")
    print(f"allreduce volume per step: {PARAMS * 4 / 1e6:.2f} MB of float32 gradients")
    return 0


if __name__ == "__main__":
    sys.exit(main())
