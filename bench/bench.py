#!/usr/bin/python3
"""Side-by-side training benchmark: nnc against PyTorch (Debian's python3-torch) on the same
model, data, batch size, optimizer (Adam 1e-3), epochs and thread count, in one run.

    bench/bench.py [--model mlp|cnn] [--epochs N] [--batch B] [--threads T]

Prints a table: seconds per epoch (min and median over epochs 2..N), samples/s, test accuracy,
peak RSS, compile time, and the ratio PyTorch/nnc. PyTorch runs with the configuration the issue
tracker found best here: OMP_WAIT_POLICY=passive, OPENBLAS_CORETYPE unset, threads set before
import. Installs python3-torch if it is missing (the product never depends on it)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def ensure_torch():
    """python3-torch with OpenBLAS: without libopenblas0-pthread Debian falls back to the
    reference BLAS and PyTorch runs 20x slower than it can, which would be an unfair peer."""
    have_torch = subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode == 0
    have_openblas = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "libopenblas0-pthread"],
                                   capture_output=True, text=True).stdout.startswith("install ok")
    if have_torch and have_openblas:
        return
    print("installing python3-torch and OpenBLAS (the benchmark's peer) ...", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", "python3-torch", "libopenblas0-pthread"],
                   check=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def run_measured(cmd, env=None):
    """Runs cmd; returns (stdout, peak RSS of that child alone in MiB, from wait4)."""
    with tempfile.TemporaryFile(mode="w+") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{text}")
    return text, usage.ru_maxrss / 1024.0


def summarize(epochs_json):
    secs = [e["seconds"] for e in epochs_json][1:] or [epochs_json[0]["seconds"]]
    return min(secs), statistics.median(secs), epochs_json[-1]["val_accuracy"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    args = ap.parse_args()
    ensure_torch()
    source = os.path.join(ROOT, "examples", f"fashion_{args.model}.nn")
    work = tempfile.mkdtemp(prefix="nnc-bench-")
    exe = os.path.join(work, args.model)

    start = time.perf_counter()
    subprocess.run([args.nnc, source, "-o", exe], check=True)
    compile_seconds = time.perf_counter() - start
    log = os.path.join(work, "log.jsonl")
    _, nnc_rss = run_measured([exe, "train", "--epochs", str(args.epochs), "--batch", str(args.batch),
                               "--threads", str(args.threads), "--log", log, "--quiet"])
    nnc_epochs = [json.loads(line) for line in open(log)]

    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    env.pop("OPENBLAS_CORETYPE", None)
    out, torch_rss = run_measured(["/usr/bin/python3", os.path.join(HERE, "torch_peer.py"), args.model,
                                   str(args.epochs), str(args.batch), str(args.threads), "42"], env)
    torch_epochs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    n_min, n_med, n_acc = summarize(nnc_epochs)
    t_min, t_med, t_acc = summarize(torch_epochs)
    print(f"\n{args.model}, batch {args.batch}, {args.threads} thread(s), {args.epochs} epochs, Adam 1e-3, Fashion-MNIST")
    print(f"| {'':24} | {'nnc':>10} | {'PyTorch':>10} | {'PyTorch/nnc':>11} |")
    print(f"|{'-' * 26}|{'-' * 12}|{'-' * 12}|{'-' * 13}|")
    rows = [("s/epoch (min, ep 2..N)", n_min, t_min, "{:.2f}"), ("s/epoch (median)", n_med, t_med, "{:.2f}"),
            ("samples/s (median)", 60000 / n_med, 60000 / t_med, "{:.0f}"),
            ("test accuracy", n_acc, t_acc, "{:.4f}"), ("peak RSS (MiB)", nnc_rss, torch_rss, "{:.0f}")]
    for name, a, b, fmt in rows:
        ratio = b / a if a else float("nan")
        if name.startswith("samples"):
            ratio = a / b
        print(f"| {name:24} | {fmt.format(a):>10} | {fmt.format(b):>10} | {ratio:>10.2f}x |")
    print(f"| {'compile time (s)':24} | {compile_seconds:>10.2f} | {'-':>10} | {'':>11} |")


if __name__ == "__main__":
    main()
