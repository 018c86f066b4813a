#!/usr/bin/python3
"""The PyTorch peer for bench.py: trains the same model on the same data with the same settings
and prints one JSON object per epoch (seconds of training, accuracy on the test set at the end).
Run by bench.py in its own process so its peak RSS is measured separately."""
import gzip
import json
import struct
import sys
import time

import numpy as np

model_name, epochs, batch, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
import torch  # noqa: E402  (imported after the environment is set by bench.py)

torch.set_num_threads(threads)
torch.manual_seed(seed)
FASHION = "/usr/share/datasets/fashion-mnist"


def load(prefix):
    def idx(path):
        with gzip.open(path, "rb") as f:
            data = f.read()
        nd = data[3]
        dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
        return np.frombuffer(data[4 + 4 * nd:], dtype=np.uint8).reshape(dims)
    x = torch.from_numpy(idx(f"{FASHION}/{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(idx(f"{FASHION}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64))
    return x, y


nn = torch.nn
if model_name == "mlp":
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
else:
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
# The same initialization as nnc (Glorot-uniform weights, zero biases), so that the two train the
# same model and their accuracies differ only by the random draws.
for layer in net:
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)
# PyTorch's faster paths, for a fair peer: the multi-tensor ("foreach") Adam, about 0.4 ms less per
# step than 1.13's default per-parameter loop here, and gradients reset to None instead of zeroed.
opt = torch.optim.Adam(net.parameters(), lr=1e-3, foreach=True)
loss_fn = nn.CrossEntropyLoss()
x, y = load("train")
tx, ty = load("t10k")
for epoch in range(1, epochs + 1):
    net.train()
    order = torch.randperm(len(x))
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        acc = float((net(tx).argmax(1) == ty).float().mean())
    print(json.dumps({"epoch": epoch, "seconds": seconds, "val_accuracy": acc}), flush=True)
