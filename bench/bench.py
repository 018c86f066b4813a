#!/usr/bin/python3
"""Side-by-side training benchmark: nnc against PyTorch (Debian's python3-torch) on the same
model, data, batch size, optimizer (Adam 1e-3), epochs and thread count, in one run.

    bench/bench.py [--model mlp|cnn] [--epochs N] [--batch B] [--threads T]
    bench/bench.py --all [--epochs N] [--steps N] [--threads T]

--all runs MLP b64, MLP b256, CNN b64 (s/epoch), the GPT of gpt_bench.py and the LSTM of
lstm_bench.py (ms/step; their measure functions) in one run and prints one table of ratios,
with PyTorch in the widest ATEN_CPU_CAPABILITY that runs here and its configuration as it
reports it (torch.__config__).

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


def peak_per_core(work):
    """What one core delivers now in fp32 FMAs (bench/peak.c, GFLOP/s): the ceiling the kernels'
    GFLOP/s are compared with, measured in the same run (machines and neighbours differ)."""
    exe = os.path.join(work, "peak")
    subprocess.run(["cc", "-O2", "-march=native", os.path.join(HERE, "peak.c"), "-o", exe], check=True)
    return float(subprocess.run([exe], check=True, capture_output=True, text=True).stdout)


def median_of(runs):
    """Each field's median over a list of runs (dicts with the same numeric fields): the figure
    the alternating-rounds scripts (gpt_bench.py, deploy_bench.py) report."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


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


def measure_fashion(model, epochs, batch, threads, nnc):
    """Trains examples/fashion_MODEL.nn in nnc and in PyTorch (torch_peer.py, which inherits
    os.environ); returns a dict of seconds/epoch (min, median), accuracies, RSS, compile time."""
    source = os.path.join(ROOT, "examples", f"fashion_{model}.nn")
    work = tempfile.mkdtemp(prefix="nnc-bench-")
    exe = os.path.join(work, model)
    start = time.perf_counter()
    subprocess.run([nnc, source, "-o", exe], check=True)
    compile_seconds = time.perf_counter() - start
    log = os.path.join(work, "log.jsonl")
    _, nnc_rss = run_measured([exe, "train", "--epochs", str(epochs), "--batch", str(batch),
                               "--threads", str(threads), "--log", log, "--quiet"])
    nnc_epochs = [json.loads(line) for line in open(log)]
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    env.pop("OPENBLAS_CORETYPE", None)
    out, torch_rss = run_measured(["/usr/bin/python3", os.path.join(HERE, "torch_peer.py"), model,
                                   str(epochs), str(batch), str(threads), "42"], env)
    torch_epochs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    n_min, n_med, n_acc = summarize(nnc_epochs)
    t_min, t_med, t_acc = summarize(torch_epochs)
    return {"nnc_min": n_min, "nnc_med": n_med, "nnc_acc": n_acc, "torch_min": t_min, "torch_med": t_med, "torch_acc": t_acc,
            "nnc_rss": nnc_rss, "torch_rss": torch_rss, "compile_seconds": compile_seconds}


# PyTorch's configuration as it reports it, printed by a child under the environment its peers get.
TORCH_CONFIG = r"""
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
torch.nn.functional.conv2d(torch.randn(2, 3, 8, 8), torch.randn(4, 3, 3, 3)).sum()  # runs the CPU kernels once
show = torch.__config__.show()
capability = next((l.split(":", 1)[1].strip() for l in show.splitlines() if "CPU capability usage" in l), "?")
blas = next((f.split("=", 1)[1] for l in show.splitlines() for f in l.replace(",", " ").split() if f.startswith("BLAS_INFO=")), "?")
info = torch.__config__.parallel_info()
backend = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("ATen parallel backend")), "?")
print(json.dumps({"version": torch.__version__, "capability": capability, "blas": blas, "backend": backend,
                  "threads": torch.get_num_threads(), "mkldnn_available": torch.backends.mkldnn.is_available(),
                  "mkldnn_enabled": torch.backends.mkldnn.enabled}))
"""


def bf16_note():
    """Why the table has no bf16 row."""
    try:
        with open("/proc/cpuinfo") as f:
            has = " avx512_bf16" in f.read()
    except OSError:
        has = False
    return "no bf16 row (nnc trains in float32 only)." if has else "no bf16 row (this CPU has no AVX512-BF16)."


def torch_best_config(threads):
    """Sets os.environ["ATEN_CPU_CAPABILITY"] to the widest one that runs here (avx512, then
    avx2; SIGILL on a CPU without it) or leaves PyTorch's own choice; returns what PyTorch then
    reports, with the tries."""
    tried = []
    for capability in ["avx512", "avx2", None]:
        env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(threads))
        env.pop("ATEN_CPU_CAPABILITY", None)
        if capability:
            env["ATEN_CPU_CAPABILITY"] = capability
        p = subprocess.run(["/usr/bin/python3", "-c", TORCH_CONFIG, str(threads)], capture_output=True, text=True, env=env)
        if p.returncode == 0:
            config = json.loads(p.stdout.strip().splitlines()[-1])
            if capability is None or config["capability"].lower() == capability:
                if capability:
                    os.environ["ATEN_CPU_CAPABILITY"] = capability
                else:
                    os.environ.pop("ATEN_CPU_CAPABILITY", None)
                config["aten_cpu_capability"] = capability or "(unset)"
                config["tried"] = tried
                return config
            tried.append(f"{capability}: runs as {config['capability']}")
        else:
            why = "illegal instruction" if p.returncode in (-4, 132) else f"exit {p.returncode}"
            tried.append(f"{capability}: {why}")
    sys.exit("PyTorch does not run here: " + "; ".join(tried))


def run_all(args):
    """MLP b64, MLP b256, CNN b64, the GPT and the LSTM in one run: one table of PyTorch/nnc."""
    import gpt_bench
    import lstm_bench
    config = torch_best_config(args.threads)
    rows = []  # (model, unit, nnc, PyTorch)
    for model, batch in [("mlp", 64), ("mlp", 256), ("cnn", 64)]:
        print(f"== {model} batch {batch}: {args.epochs} epoch(s) each ...", flush=True)
        m = measure_fashion(model, args.epochs, batch, args.threads, args.nnc)
        rows.append((f"{model.upper()} b{batch}", "s/epoch", m["nnc_min"], m["torch_min"]))
    print(f"== GPT batch 32: {args.steps} steps each ...", flush=True)
    try:
        g = gpt_bench.measure(32, args.steps, args.threads, args.nnc)
        rows.append(("GPT b32 (text_gpt)", "ms/step", g["nnc_ms"], g["torch_ms"]))
    except SystemExit as e:  # its data is missing: the other rows still count
        rows.append(("GPT b32 (text_gpt)", f"not run: {e}", None, None))
    print(f"== LSTM batch 64: {args.steps} steps each ...", flush=True)
    lm = lstm_bench.measure(lstm_bench.options(["--steps", str(args.steps), "--threads", str(args.threads), "--nnc", args.nnc]))
    rows.append(("LSTM b64 (lstm_bench)", "ms/step", lm["nnc_ms"], lm["torch_ms"]))
    print(f"\nnnc against PyTorch, {args.threads} thread(s), {args.epochs} epoch(s) / {args.steps} steps "
          f"(s/epoch: the fastest epoch after the first when there are several)")
    print(f"| {'model':22} | {'unit':8} | {'nnc':>9} | {'PyTorch':>9} | {'PyTorch/nnc':>11} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 11}|{'-' * 11}|{'-' * 13}|")
    for name, unit, a, b in rows:
        if a is None:
            print(f"| {name:22} | {unit}")
            continue
        print(f"| {name:22} | {unit:8} | {a:9.2f} | {b:9.2f} | {b / a:10.2f}x |")
    print(f"\nPyTorch {config['version']} as it reports itself: CPU capability {config['capability']} "
          f"(ATEN_CPU_CAPABILITY={config['aten_cpu_capability']}; tried: {'; '.join(config['tried']) or 'nothing wider'}), "
          f"oneDNN (mkldnn) available={config['mkldnn_available']} enabled={config['mkldnn_enabled']}, "
          f"BLAS_INFO={config['blas']}, parallel backend {config['backend']}, {config['threads']} thread(s), "
          f"OMP_WAIT_POLICY=passive; {bf16_note()}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (a shared machine: compare within one run only)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--all", action="store_true", help="MLP b64, MLP b256, CNN b64, GPT and LSTM: one table")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="with --all: steps of the GPT and the LSTM")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    args = ap.parse_args()
    ensure_torch()
    if args.all:
        run_all(args)
        return
    m = measure_fashion(args.model, args.epochs, args.batch, args.threads, args.nnc)
    n_min, n_med, n_acc, t_min, t_med, t_acc = (m["nnc_min"], m["nnc_med"], m["nnc_acc"], m["torch_min"], m["torch_med"],
                                                m["torch_acc"])
    nnc_rss, torch_rss, compile_seconds = m["nnc_rss"], m["torch_rss"], m["compile_seconds"]
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
