#!/usr/bin/python3
"""The PyTorch peer of examples/text_gpt.nn: the same GPT in torch.nn (pre-norm blocks of
layernorm, causal nn.MultiheadAttention, residual, layernorm, Linear-GELU(tanh)-Linear, residual;
learned positions; a final layernorm and a byte classifier), built from an nnc checkpoint's
tensors so both start from the same weights, trained with the same AdamW on the same windows in
file order. Used by bench/gpt_bench.py (tokens/s side by side) and tests/e2e/gpt_parity.py (the
weights after N steps).

    gpt_torch.py TEXT CKPT_IN --layers L --d D --heads H --ctx T --batch B --steps N --threads K
                 [--lr X] [--weight-decay W] [--save OUT.npz]

prints one JSON line: steps, seconds, tokens_per_sec, final loss."""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "runtime", "python"))
import nnc_checkpoint  # noqa: E402


def build(torch, layers, d, heads, ctx, vocab=256):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(d)
            self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
            self.ln2 = nn.LayerNorm(d)
            self.fc1 = nn.Linear(d, 4 * d)
            self.fc2 = nn.Linear(4 * d, d)
            self.register_buffer("mask", torch.triu(torch.ones(ctx, ctx, dtype=torch.bool), 1), persistent=False)

        def forward(self, h):
            a = self.ln1(h)
            h = h + self.attn(a, a, a, attn_mask=self.mask, need_weights=False)[0]
            return h + self.fc2(nn.functional.gelu(self.fc1(self.ln2(h)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(torch.zeros(ctx, d))
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.ln_f = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab)

        def forward(self, x):
            h = self.tok(x) + self.pos
            for b in self.blocks:
                h = b(h)
            return self.head(self.ln_f(h))

    return GPT()


def nnc_names(layers):
    """torch parameter name -> nnc checkpoint name, for build()'s module."""
    names = {"tok.weight": "embedding0.weight", "pos": "position_embedding0.weight",
             "ln_f.weight": "layernorm0.weight", "ln_f.bias": "layernorm0.bias",
             "head.weight": "dense0.weight", "head.bias": "dense0.bias"}
    for k in range(layers):
        ours, theirs = f"blocks.{k}.", f"block{k}."
        for t, n in [("ln1", "layernorm0"), ("ln2", "layernorm1"), ("fc1", "dense0"), ("fc2", "dense1")]:
            for p in ("weight", "bias"):
                names[f"{ours}{t}.{p}"] = f"{theirs}{n}.{p}"
        for p in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"):
            names[f"{ours}attn.{p}"] = f"{theirs}attention0.{p}"
    return names


def load_weights(torch, net, weights, layers):
    state = {t: torch.from_numpy(np.ascontiguousarray(weights[n], dtype=np.float32)) for t, n in nnc_names(layers).items()}
    net.load_state_dict(state, strict=True)


def windows(torch, path, ctx):
    data = np.frombuffer(open(path, "rb").read(), dtype=np.uint8).astype(np.int64)
    count = (len(data) - 1) // ctx
    x = torch.from_numpy(data[:count * ctx].reshape(count, ctx).copy())
    y = torch.from_numpy(data[1:count * ctx + 1].reshape(count, ctx).copy())
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("text")
    ap.add_argument("init")
    for k, v in [("layers", 4), ("d", 128), ("heads", 4), ("ctx", 64), ("batch", 32), ("steps", 20), ("threads", 2)]:
        ap.add_argument("--" + k, type=int, default=v)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--save")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    net = build(torch, a.layers, a.d, a.heads, a.ctx)
    load_weights(torch, net, nnc_checkpoint.load(a.init), a.layers)
    # PyTorch's faster paths, for a fair peer: foreach AdamW, gradients reset to None
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay, foreach=True)
    x, y = windows(torch, a.text, a.ctx)
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = min(a.steps, len(x) // a.batch)
    start = time.perf_counter()
    loss = None
    for s in range(steps):
        xb, yb = x[s * a.batch:(s + 1) * a.batch], y[s * a.batch:(s + 1) * a.batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb).reshape(-1, 256), yb.reshape(-1))
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    if a.save:
        names = nnc_names(a.layers)
        np.savez(a.save, **{names[k]: v.detach().numpy() for k, v in net.named_parameters()})
    print(json.dumps({"steps": steps, "seconds": seconds, "tokens_per_sec": steps * a.batch * a.ctx / seconds,
                      "loss": float(loss) if loss is not None else None}), flush=True)


if __name__ == "__main__":
    main()
