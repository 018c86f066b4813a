#!/usr/bin/python3
"""The GPT of examples/text_gpt.nn (4 blocks, d=128, 4 heads, t=64, bytes) trained by nnc and by
PyTorch (bench/gpt_torch.py, the same architecture in torch.nn from the same initial weights) in
one run, on the same machine and thread count: ms per step, tokens/s, peak RSS, the ratio.

    bench/gpt_bench.py [--batch 32] [--steps 20] [--threads 2] [--rounds 3]

nnc's step is `./text_gpt bench` (the train step and the optimizer on a batch, per-kernel
profile included); PyTorch's is its training loop over the first windows of the text in file
order (AdamW, foreach, OMP_WAIT_POLICY=passive). Installs python3-torch if it is missing (the
product never depends on it)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import ensure_torch, median_of, torch_best_config, peak_per_core, run_measured  # noqa: E402


def measure(batch, steps, threads, nnc=os.path.join(ROOT, "build", "nnc"), rounds=1):
    """`rounds` alternating runs of both: a dict of nnc_ms, torch_ms (per step), the RSS, nnc's
    product GFLOP/s, tokens per step, steps per epoch and bench/peak.c's GFLOP/s per core, each the
    median over the rounds (and the rounds' own figures under "rounds"). bench.py --all calls it
    too. PyTorch inherits os.environ (bench.py sets ATEN_CPU_CAPABILITY there)."""
    a = argparse.Namespace(batch=batch, steps=steps, threads=threads)
    text = os.path.join(ROOT, "examples", "data", "bible.txt")
    if not os.path.exists(text):
        sys.exit(f"{text} is missing: run .ci/setup (it writes it with Debian's bible-kjv)")
    work = tempfile.mkdtemp(prefix="gpt_bench.")
    exe = os.path.join(work, "text_gpt")
    subprocess.run([nnc, os.path.join(ROOT, "examples", "text_gpt.nn"), "-o", exe], check=True)
    # the initial weights both start from: nnc's own initialization after one step on a little text
    small = os.path.join(work, "small.txt")
    with open(text, "rb") as f, open(small, "wb") as g:
        g.write(f.read()[:64 * a.batch + 1])
    init = os.path.join(work, "init.safetensors")
    subprocess.run([exe, "train", "--data", f'text("{small}")', "--validate", "none", "--epochs", "1",
                    "--batch", str(a.batch), "--save", init, "--quiet"], check=True, capture_output=True)

    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(a.threads))
    env.pop("OPENBLAS_CORETYPE", None)
    each = []
    for _ in range(rounds):
        out, nnc_rss = run_measured([exe, "bench", "--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads)])
        step = re.search(r"step \(train_step \+ optimizer[^)]*\): ([\d.]+) ms.*?([\d.]+) GFLOP/s in the products", out)
        out, torch_rss = run_measured(["/usr/bin/python3", os.path.join(HERE, "gpt_torch.py"), text, init, "--batch", str(a.batch),
                                       "--steps", str(a.steps + 3), "--threads", str(a.threads)], env=env)
        peer = json.loads(out.strip().split("\n")[-1])
        peak_core = peak_per_core(work)  # after both runs: a core runs slower for a while after it
        each.append({"nnc_ms": float(step.group(1)), "gflops": float(step.group(2)), "torch_ms": 1000 * peer["seconds"] / peer["steps"],
                     "nnc_rss": nnc_rss, "torch_rss": torch_rss, "peak_core": peak_core})
    tokens = a.batch * 64
    # one epoch of the example: 95% of the text in windows of 64 bytes (split(0.05) holds out the tail)
    steps_per_epoch = (int(os.path.getsize(text) * 0.95) - 1) // 64 // a.batch
    result = median_of(each)
    result.update({"tokens": tokens, "steps_per_epoch": steps_per_epoch, "rounds": each})
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs of nnc and PyTorch; medians are shown")
    ap.add_argument("--no-parity", action="store_true", help="skip the step-for-step parity check (tests/e2e/gpt_parity.py)")
    a = ap.parse_args()
    ensure_torch()
    config = torch_best_config(a.threads)  # PyTorch's widest working ATEN_CPU_CAPABILITY, as bench.py --all
    m = measure(a.batch, a.steps, a.threads, rounds=a.rounds)
    nnc_ms, torch_ms, nnc_rss, torch_rss = m["nnc_ms"], m["torch_ms"], m["nnc_rss"], m["torch_rss"]
    gflops, tokens, steps_per_epoch = m["gflops"], m["tokens"], m["steps_per_epoch"]
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("\n")
                if line.startswith("Model name")), "?")
    print(f"GPT 4x(d=128, 4 heads), t=64, batch {a.batch}, {a.threads} threads ({cpu}), medians of {a.rounds} alternating rounds")
    for i, r in enumerate(m["rounds"]):
        print(f"  round {i + 1}: nnc {r['nnc_ms']:.1f} ms, PyTorch {r['torch_ms']:.1f} ms, {r['torch_ms'] / r['nnc_ms']:.2f}x, "
              f"products {100 * r['gflops'] / (r['peak_core'] * a.threads):.0f}% of peak")
    print(f"{'':10} {'ms/step':>9} {'tokens/s':>10} {'s/epoch':>9} {'peak RSS':>10}   (s/epoch: {steps_per_epoch} steps of this step time)")
    print(f"{'nnc':10} {nnc_ms:9.1f} {tokens / nnc_ms * 1000:10.0f} {nnc_ms * steps_per_epoch / 1000:9.0f} {nnc_rss:8.0f} MiB"
          f"   (products at {gflops:.1f} GFLOP/s)")
    print(f"{'PyTorch':10} {torch_ms:9.1f} {tokens / torch_ms * 1000:10.0f} {torch_ms * steps_per_epoch / 1000:9.0f} {torch_rss:8.0f} MiB")
    print(f"speed-up (PyTorch ms / nnc ms): {torch_ms / nnc_ms:.2f}x  (PyTorch CPU capability {config['capability']}, "
          f"ATEN_CPU_CAPABILITY={config['aten_cpu_capability']})")
    ceiling = m["peak_core"] * a.threads
    print(f"products: {gflops:.1f} GFLOP/s (their FLOPs over the whole step), {100 * gflops / ceiling:.0f}% of the "
          f"{ceiling:.0f} GFLOP/s that bench/peak.c measures on {a.threads} core(s) now")
    if not a.no_parity:  # the same check as the test: 20 AdamW steps of a 2-block d=64 GPT from the same weights and batches
        p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "e2e", "gpt_parity.py"), "--nnc",
                            os.path.join(ROOT, "build", "nnc"), "--work", tempfile.mkdtemp(prefix="gpt_parity.")],
                           capture_output=True, text=True)
        line = next((l for l in p.stdout.split("\n") if "AdamW steps" in l), (p.stdout + p.stderr).strip()[-300:])
        print(f"parity (tests/e2e/gpt_parity.py, the 2-block d=64 t=32 GPT): {line}{'' if p.returncode == 0 else '  FAILED'}")


if __name__ == "__main__":
    main()
