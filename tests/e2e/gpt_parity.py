#!/usr/bin/python3
"""nnc against PyTorch on a GPT, step for step: from the same weights and the same batches
(text windows in file order), 20 AdamW steps of a 2-block, d=64, 4-head, t=32 byte-level GPT
(examples/text_gpt.nn with -D) in nnc and in torch.nn (bench/gpt_torch.py) end with the same
weights. Skipped, with a note, when Debian's python3-torch is not installed.

    gpt_parity.py --nnc NNC --work DIR
"""
import argparse
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))
from e2e import check, read_safetensors, run, write_safetensors  # noqa: E402

LAYERS, D, HEADS, CTX, BATCH, STEPS = 2, 64, 4, 32, 8, 20


def init_weights(rng):
    """nnc's initialization kinds drawn in NumPy: Glorot-uniform matrices, zero biases, ones and
    zeros for layernorm (the values only need to be the same on both sides)."""
    def glorot(fan_out, fan_in, shape):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype(np.float32)
    w = {"embedding0.weight": glorot(D, D, (256, D)), "position_embedding0.weight": glorot(D, D, (CTX, D)),
         "layernorm0.weight": np.ones(D, np.float32), "layernorm0.bias": np.zeros(D, np.float32),
         "dense0.weight": glorot(256, D, (256, D)), "dense0.bias": np.zeros(256, np.float32)}
    for k in range(LAYERS):
        p = f"block{k}."
        for ln in ("layernorm0", "layernorm1"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = np.ones(D, np.float32), np.zeros(D, np.float32)
        w[p + "attention0.in_proj_weight"] = glorot(3 * D, D, (3 * D, D))
        w[p + "attention0.in_proj_bias"] = rng.uniform(-0.1, 0.1, 3 * D).astype(np.float32)
        w[p + "attention0.out_proj.weight"] = glorot(D, D, (D, D))
        w[p + "attention0.out_proj.bias"] = rng.uniform(-0.1, 0.1, D).astype(np.float32)
        w[p + "dense0.weight"], w[p + "dense0.bias"] = glorot(4 * D, D, (4 * D, D)), rng.uniform(-0.1, 0.1, 4 * D).astype(np.float32)
        w[p + "dense1.weight"], w[p + "dense1.bias"] = glorot(D, 4 * D, (D, 4 * D)), rng.uniform(-0.1, 0.1, D).astype(np.float32)
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    if subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True).returncode != 0:
        print("gpt_parity: skipped: PyTorch (Debian's python3-torch) is not installed")
        return
    work = os.path.join(args.work, "gpt_parity")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(20)
    # text with structure to learn: words from a small vocabulary, exactly STEPS batches of windows
    words = ["in", "the", "beginning", "god", "created", "heaven", "and", "earth", "light", "was"]
    text = " ".join(rng.choice(words, 4000)).encode()[:STEPS * BATCH * CTX + 1]
    text_path = os.path.join(work, "text.txt")
    with open(text_path, "wb") as f:
        f.write(text)
    init = os.path.join(work, "init.safetensors")
    w0 = init_weights(rng)
    write_safetensors(init, {k: v.astype(np.float64) for k, v in w0.items()})
    source = os.path.join(ROOT, "examples", "text_gpt.nn")
    exe = os.path.join(work, "gpt")
    # two blocks: the example with its last two block applications removed
    src = open(source).read().replace("-> block(d, heads) -> block(d, heads) -> block(d, heads) -> block(d, heads)",
                                      "-> block(d, heads) -> block(d, heads)")
    check("block(d, heads) -> block(d, heads)\n" in src, "the example's four blocks were not found")
    small = os.path.join(work, "gpt2.nn")
    with open(small, "w") as f:
        f.write(src)
    run([args.nnc, small, "-o", exe, "-D", f"d={D}", "-D", f"heads={HEADS}", "-D", f"ctx={CTX}"])
    out = os.path.join(work, "nnc.safetensors")
    run([exe, "train", "--load", init, "--data", f'text("{text_path}")', "--validate", "none", "--no-shuffle",
         "--epochs", "1", "--batch", str(BATCH), "--optimizer", "adamw(lr=1e-3, weight_decay=0.01)", "--threads", "2",
         "--save", out, "--quiet"])
    nnc_w, _ = read_safetensors(out)
    theirs = os.path.join(work, "torch.npz")
    run(["/usr/bin/python3", os.path.join(ROOT, "bench", "gpt_torch.py"), text_path, init, "--layers", str(LAYERS),
         "--d", str(D), "--heads", str(HEADS), "--ctx", str(CTX), "--batch", str(BATCH), "--steps", str(STEPS),
         "--threads", "2", "--save", theirs])
    torch_w = dict(np.load(theirs))
    # The key rows [d, 2d) of in_proj_bias have a gradient that is exactly zero in exact
    # arithmetic (adding b to every key adds q.b to all of a query's scores, which softmax
    # ignores); in float32 it is rounding noise, which Adam divides by its own size and turns into
    # steps of up to lr in a random direction, in PyTorch as in nnc. They are compared apart.
    worst, where, key_bias = 0.0, "", 0.0
    for name, t in torch_w.items():
        got = nnc_w[name].reshape(t.shape)
        if name.endswith("in_proj_bias"):
            key_bias = max(key_bias, float(np.max(np.abs(got[D:2 * D] - t[D:2 * D]))))
            got, t = np.concatenate([got[:D], got[2 * D:]]), np.concatenate([t[:D], t[2 * D:]])
        diff = float(np.max(np.abs(got - t)))
        print(f"{name:34} max |nnc - torch| = {diff:.2e}")
        if diff > worst:
            worst, where = diff, name
    print(f"{STEPS} AdamW steps: max |nnc - torch| over all weights = {worst:.2e} ({where}); "
          f"key biases (zero gradient, Adam-amplified rounding noise) {key_bias:.2e}")
    check(worst <= 1e-5, f"nnc and PyTorch differ by {worst:.3g} in {where} after {STEPS} steps")
    check(key_bias <= 2 * STEPS * 1e-3, f"the key biases moved {key_bias:.3g}, more than the steps could move them")


if __name__ == "__main__":
    main()
