#!/usr/bin/python3
"""Inference benchmark (not a test): an nnc library (--emit=lib, NAME_predict) against ONNX
Runtime running the same model's --emit=onnx export, same weights, same images, one thread each,
in one run.

    bench/deploy_bench.py [--nnc build/nnc] [--calls 10000] [--threads 1] [--rounds 3] [--work DIR]

For the MLP and the CNN (examples/fashion_mlp.nn, fashion_cnn.nn, weights from one short
training epoch: the speed does not depend on them): batch 1 latency (median and p99 over CALLS
calls) and batch 256 throughput, in CPU time (this machine is shared with other jobs, so wall
time measures them; CPU time of nnc's calling thread, of ONNX Runtime's process). ONNX Runtime is npm's onnxruntime-node, installed into the work
folder and run through its Node binding (its per-call cost is part of what a Node service pays;
the C API would save some microseconds of it). Prints a Markdown table."""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import median_of  # noqa: E402
ROOT = os.path.dirname(HERE)
FASHION = "/usr/share/datasets/fashion-mnist"


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def load_idx(path, count):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)[:count]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    ap.add_argument("--calls", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of each side; the table shows their medians")
    ap.add_argument("--work", default="/tmp/nnc_deploy_bench")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    modules = os.path.join(a.work, "node_modules")
    if not os.path.isdir(os.path.join(modules, "onnxruntime-node")):
        run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", a.work, "onnxruntime-node"])
    # training data for one short epoch, and 1000 test images (raw pixel values) to time on
    train = os.path.join(a.work, "train")
    images = load_idx(f"{FASHION}/train-images-idx3-ubyte.gz", 3200)
    labels = load_idx(f"{FASHION}/train-labels-idx1-ubyte.gz", 3200)
    for path, arr, magic in ((train + "-images", images, 0x803), (train + "-labels", labels, 0x801)):
        with open(path, "wb") as f:
            f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes())
    test = load_idx(f"{FASHION}/t10k-images-idx3-ubyte.gz", 1000).astype(np.float32)
    test_bin = os.path.join(a.work, "test.bin")
    test.tofile(test_bin)
    rows = []
    for model in ("fashion_mlp", "fashion_cnn"):
        source = os.path.join(ROOT, "examples", f"{model}.nn")
        exe = os.path.join(a.work, model)
        run([a.nnc, source, "-o", exe])
        ckpt = os.path.join(a.work, f"{model}.safetensors")
        run([exe, "train", "--data", f'idx("{train}-images", "{train}-labels", scale=1/255)', "--validate", "none",
             "--epochs", "1", "--save", ckpt, "--quiet"])
        stem = os.path.join(a.work, model)
        run([a.nnc, source, "--emit=lib", "--weights", ckpt, "-o", stem])
        run([a.nnc, source, "--emit=onnx", "--weights", ckpt, "-o", stem + ".onnx"])
        bench = os.path.join(a.work, f"bench_{model}")
        run(["cc", "-O2", f"-DLIB={model}", "-include", stem + ".h", os.path.join(HERE, "deploy_bench.c"), stem + ".a", "-lm",
             "-o", bench])
        # the two alternate, a.rounds times: each figure is the median over the rounds (a neighbour's
        # burst then costs one round of one side, not the comparison)
        nnc_runs, ort_runs = [], []
        for _ in range(a.rounds):
            nnc_runs.append(json.loads(run([bench, test_bin, "1000", str(a.calls)])))
            ort_runs.append(json.loads(run(["node", os.path.join(HERE, "deploy_ort_bench.js"), stem + ".onnx", test_bin, "1000",
                                            str(a.calls), str(a.threads), "1,28,28"], env=dict(os.environ, NODE_PATH=modules))))
        rows.append((model, median_of(nnc_runs), median_of(ort_runs)))
    print("CPU time per call (the machine is shared: wall time would measure the other jobs)")
    print(f"threads: {a.threads} (nnc's library runs on the calling thread; ONNX Runtime intra-op threads = {a.threads}), "
          f"{a.calls} calls at batch 1, 30 at batch 256; medians of {a.rounds} alternating rounds")
    print("| model | batch 1 median (µs) nnc / ORT | batch 1 p99 (µs) nnc / ORT | speedup | batch 256 (images/s) nnc / ORT | ratio |")
    print("|---|---|---|---|---|---|")
    for model, nnc, ort in rows:
        print(f"| {model} | {nnc['median_us']:.1f} / {ort['median_us']:.1f} | {nnc['p99_us']:.1f} / {ort['p99_us']:.1f} | "
              f"{ort['median_us'] / nnc['median_us']:.2f}x | {nnc['images_per_s']:.0f} / {ort['images_per_s']:.0f} | "
              f"{nnc['images_per_s'] / ort['images_per_s']:.2f}x |")


if __name__ == "__main__":
    main()
