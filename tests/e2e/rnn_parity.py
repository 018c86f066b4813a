#!/usr/bin/python3
"""nnc against PyTorch on recurrent text classifiers, step for step: from the same weights and
the same batches (the token-id CSV of examples/data in file order), one epoch of SGD with
momentum 0.9 of `tokens -> embedding -> lstm(return="last") -> dense` and of the same with gru,
in nnc and in torch.nn (nn.LSTM / nn.GRU, batch_first), ends with the same weights within 1e-5
(max abs over every tensor). The checkpoint names are PyTorch's, so torch's state_dict loads
nnc's tensors by name. Skipped, with a note, when Debian's python3-torch is not installed.

    rnn_parity.py --nnc NNC --work DIR
"""
import argparse
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from e2e import check, read_safetensors, run, write_safetensors  # noqa: E402

T, VOCAB, EMBED, HIDDEN, BATCH, EXAMPLES, LR = 16, 64, 16, 32, 32, 640, 0.1

MODEL = """input  tokens : int[{t}]
target label  : class[2]
h      = tokens -> embedding({vocab}, {embed}) -> {op}({hidden}, return="last")
logits = h -> dense(2)
loss   cross_entropy(logits, label)
"""

def torch_program():
    """The PyTorch side, run by /usr/bin/python3 (the interpreter that sees python3-torch)."""
    return r'''
import sys
import numpy as np
import torch

torch.set_num_threads(2)
op, init, data, out = sys.argv[1:5]
vocab, embed, hidden, batch = (int(v) for v in sys.argv[5:9])
lr = float(sys.argv[9])
w = dict(np.load(init))
rows = np.loadtxt(data, delimiter=",", skiprows=1, dtype=np.int64)
ids, labels = torch.from_numpy(rows[:, :-1]), torch.from_numpy(rows[:, -1])


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding0 = torch.nn.Embedding(vocab, embed)
        cell = torch.nn.LSTM if op == "lstm" else torch.nn.GRU
        setattr(self, op + "0", cell(embed, hidden, batch_first=True))
        self.dense0 = torch.nn.Linear(hidden, 2)

    def forward(self, x):
        seq, _ = getattr(self, op + "0")(self.embedding0(x))
        return self.dense0(seq[:, -1])


net = Net()
net.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})
opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
for start in range(0, len(ids), batch):
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(ids[start:start + batch]), labels[start:start + batch])
    loss.backward()
    opt.step()
np.savez(out, **{k: v.detach().numpy() for k, v in net.state_dict().items()})
'''


def init_weights(rng, op):
    """PyTorch's initialization drawn in NumPy: U(-1/sqrt(h), 1/sqrt(h)) for the recurrent
    tensors, embeddings and the classifier uniform too (values only need to agree)."""
    gates = 4 if op == "lstm" else 3
    k = 1 / np.sqrt(HIDDEN)
    u = lambda bound, *shape: rng.uniform(-bound, bound, shape).astype(np.float32)  # noqa: E731
    p = op + "0."
    return {"embedding0.weight": u(1.0, VOCAB, EMBED),
            p + "weight_ih_l0": u(k, gates * HIDDEN, EMBED), p + "weight_hh_l0": u(k, gates * HIDDEN, HIDDEN),
            p + "bias_ih_l0": u(k, gates * HIDDEN), p + "bias_hh_l0": u(k, gates * HIDDEN),
            "dense0.weight": u(k, 2, HIDDEN), "dense0.bias": u(k, 2)}


def parity(args, work, op, data):
    rng = np.random.default_rng(14)
    w0 = init_weights(rng, op)
    init = os.path.join(work, f"{op}_init.safetensors")
    write_safetensors(init, w0)
    np.savez(os.path.join(work, f"{op}_init.npz"), **w0)
    source = os.path.join(work, f"{op}.nn")
    with open(source, "w") as f:
        f.write(MODEL.format(t=T, vocab=VOCAB, embed=EMBED, op=op, hidden=HIDDEN))
    exe = os.path.join(work, op)
    run([args.nnc, source, "-o", exe])
    out = os.path.join(work, f"{op}_nnc.safetensors")
    run([exe, "train", "--load", init, "--data", f'csv("{data}", target="label")', "--validate", "none", "--no-shuffle",
         "--epochs", "1", "--batch", str(BATCH), "--optimizer", f"sgd(lr={LR}, momentum=0.9)", "--threads", "2",
         "--save", out, "--quiet"])
    nnc_w, _ = read_safetensors(out)
    program = os.path.join(work, "torch_side.py")
    with open(program, "w") as f:
        f.write(torch_program())
    theirs = os.path.join(work, f"{op}_torch.npz")
    run(["/usr/bin/python3", program, op, os.path.join(work, f"{op}_init.npz"), data, theirs, str(VOCAB), str(EMBED),
         str(HIDDEN), str(BATCH), str(LR)])
    torch_w = dict(np.load(theirs))
    nnc_w = {k: v for k, v in nnc_w.items() if not k.startswith("optimizer.")}
    check(sorted(torch_w) == sorted(nnc_w), f"{op}: tensor names differ: torch {sorted(torch_w)}, nnc {sorted(nnc_w)}")
    worst, where, moved = 0.0, "", 0.0
    for name, t in sorted(torch_w.items()):
        got = nnc_w[name].reshape(t.shape)
        diff = float(np.max(np.abs(got - t)))
        moved = max(moved, float(np.max(np.abs(t - w0[name]))))
        print(f"{op}: {name:22} max |nnc - torch| = {diff:.2e}")
        if diff > worst:
            worst, where = diff, name
    steps = EXAMPLES // BATCH
    print(f"{op}: {steps} SGD steps (momentum 0.9): max |nnc - torch| over all weights = {worst:.2e} ({where}); "
          f"weights moved up to {moved:.2e}")
    check(moved > 1e-2, f"{op}: training moved no weight noticeably ({moved:.3g}): the comparison would prove nothing")
    check(worst <= 1e-5, f"{op}: nnc and PyTorch differ by {worst:.3g} in {where} after one epoch")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    if subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode != 0:
        print("rnn_parity: skipped: PyTorch (Debian's python3-torch) is not installed")
        return
    work = os.path.join(args.work, "rnn_parity")
    os.makedirs(work, exist_ok=True)
    # the first EXAMPLES rows of the token CSV (ids padded with 0 at the end, which both sides
    # read as an ordinary token here: the data is not a csv text column)
    with open(os.path.join(ROOT, "examples", "data", "tokens_train.csv")) as f:
        lines = f.read().splitlines()[:EXAMPLES + 1]
    data = os.path.join(work, "tokens.csv")
    with open(data, "w") as f:
        f.write("\n".join(lines) + "\n")
    for op in ("lstm", "gru"):
        parity(args, work, op, data)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the runner's Failure, or a tool that failed
        print(f"FAIL: {e}")
        sys.exit(1)
    print("PASS")
