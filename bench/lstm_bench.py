#!/usr/bin/python3
"""An LSTM text classifier (t=64 byte ids, embedding 64, lstm(128, return="last"), dense 2)
trained by nnc and by PyTorch (nn.Embedding, nn.LSTM(batch_first=True), nn.Linear; the same
Adam) in one run, on the same machine and thread count: ms per step, examples/s, the ratio, and
nnc's recurrent products (the per-step W_hh products forward and backward, and dW_hh) in GFLOP/s
and as a fraction of what bench/peak.c measures the cores to deliver right now.

    bench/lstm_bench.py [--batch 64] [--steps 20] [--threads 2] [--t 64] [--hidden 128]

nnc's step is `./model bench` (train_step + Adam on a synthetic batch, per-kernel profile);
PyTorch's is its training loop on a random batch of the same shape (OMP_WAIT_POLICY=passive).
Not a test: on a shared machine the numbers are indicative only; compare the two within one run.
Installs python3-torch if it is missing (the product never depends on it)."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench import ensure_torch, torch_best_config, peak_per_core  # noqa: E402

MODEL = """input  tokens : int[{t}]
target label  : class[2]
h      = tokens -> embedding(257, {embed}) -> lstm({hidden}, return="last")
logits = h -> dense(2)
loss   cross_entropy(logits, label)
train {{
  optimizer = adam(lr=1e-3)
}}
"""

TORCH = r'''
import sys, time, torch
t, embed, hidden, batch, steps, threads = (int(v) for v in sys.argv[1:7])
torch.set_num_threads(threads)
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding0 = torch.nn.Embedding(257, embed)
        self.lstm0 = torch.nn.LSTM(embed, hidden, batch_first=True)
        self.dense0 = torch.nn.Linear(hidden, 2)
    def forward(self, x):
        seq, _ = self.lstm0(self.embedding0(x))
        return self.dense0(seq[:, -1])
net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x, y = torch.randint(0, 257, (batch, t)), torch.randint(0, 2, (batch,))
def step():
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
for _ in range(3):
    step()
start = time.perf_counter()
for _ in range(steps):
    step()
print((time.perf_counter() - start) / steps * 1000)
'''


def measure(a):
    """One run of both (a: the options of main): a dict of nnc_ms, torch_ms (per step), nnc's
    recurrent-product rows and bench/peak.c's GFLOP/s per core. bench.py --all calls it too.
    PyTorch inherits os.environ (bench.py sets ATEN_CPU_CAPABILITY there)."""
    work = tempfile.mkdtemp(prefix="lstm_bench.")
    source, exe = os.path.join(work, "lstm.nn"), os.path.join(work, "lstm")
    with open(source, "w") as f:
        f.write(MODEL.format(t=a.t, embed=a.embed, hidden=a.hidden))
    subprocess.run([a.nnc, source, "-o", exe], check=True)

    out = subprocess.run([exe, "bench", "--batch", str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads)],
                         check=True, capture_output=True, text=True).stdout
    nnc_ms = float(re.search(r"step \(train_step \+ optimizer[^)]*\): ([\d.]+) ms", out).group(1))
    # the recurrent products: the lstm (forward), lstm_grad (dh through W_hh) and rnn_dw kernels
    rows = re.findall(r"^(lstm|lstm_grad|rnn_dw) lstm0\s+([\d.]+)\s+[\d.]+%\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    product_ms = sum(float(r[1]) for r in rows)
    product_mflop = sum(float(r[2]) for r in rows)
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OMP_NUM_THREADS=str(a.threads))
    env.pop("OPENBLAS_CORETYPE", None)
    program = os.path.join(work, "torch_lstm.py")
    with open(program, "w") as f:
        f.write(TORCH)
    torch_ms = float(subprocess.run(["/usr/bin/python3", program, str(a.t), str(a.embed), str(a.hidden), str(a.batch),
                                     str(a.steps), str(a.threads)], check=True, capture_output=True, text=True, env=env).stdout)
    peak_core = peak_per_core(work)  # after both runs: a core runs slower for a while after it
    return {"nnc_ms": nnc_ms, "torch_ms": torch_ms, "rows": rows, "product_ms": product_ms, "product_mflop": product_mflop,
            "peak_core": peak_core}


def options(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--t", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    return ap.parse_args(argv)


def main():
    a = options()
    ensure_torch()
    config = torch_best_config(a.threads)  # PyTorch's widest working ATEN_CPU_CAPABILITY, as bench.py --all
    m = measure(a)
    nnc_ms, torch_ms, rows, product_ms, product_mflop, peak_core = (m["nnc_ms"], m["torch_ms"], m["rows"], m["product_ms"],
                                                                    m["product_mflop"], m["peak_core"])
    cpu = next((line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("\n")
                if line.startswith("Model name")), "?")
    print(f"LSTM classifier: t={a.t}, embedding {a.embed}, hidden {a.hidden}, batch {a.batch}, {a.threads} threads ({cpu})")
    print(f"{'':10} {'ms/step':>9} {'examples/s':>11}")
    print(f"{'nnc':10} {nnc_ms:9.1f} {a.batch / nnc_ms * 1000:11.0f}")
    print(f"{'PyTorch':10} {torch_ms:9.1f} {a.batch / torch_ms * 1000:11.0f}")
    print(f"speed-up (PyTorch ms / nnc ms): {torch_ms / nnc_ms:.2f}x  (PyTorch CPU capability {config['capability']}, "
          f"ATEN_CPU_CAPABILITY={config['aten_cpu_capability']})")
    for name, ms, mflop, gflops in rows:
        print(f"  {name:10} {float(ms):8.2f} ms  {float(mflop):8.1f} MFLOP  {float(gflops):6.1f} GFLOP/s")
    if product_ms > 0:
        gflops = product_mflop / product_ms
        ceiling = peak_core * a.threads
        print(f"recurrent products: {product_mflop:.0f} MFLOP in {product_ms:.1f} ms = {gflops:.1f} GFLOP/s, "
              f"{100 * gflops / ceiling:.0f}% of the {ceiling:.0f} GFLOP/s that bench/peak.c measures on {a.threads} core(s) now")
    print("(a shared machine: indicative only; the ratio is within one run)")


if __name__ == "__main__":
    main()
