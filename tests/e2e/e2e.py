#!/usr/bin/python3
"""End-to-end tests: compile a .nn file with nnc, run the training executable, and check what
it produced against independent computations (NumPy references, the files' own bytes).

Usage: e2e.py TEST --nnc PATH --work DIR      (each TEST is one CTest test, see CMakeLists.txt)
Needs /usr/bin/python3 with NumPy (Debian's python3-numpy) and Debian's dataset-fashion-mnist.
"""
import argparse
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
EXAMPLES = os.path.join(HERE, "..", "..", "examples")
FASHION = "/usr/share/datasets/fashion-mnist"


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def run(cmd, expect=0, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if expect is not None and p.returncode != expect:
        raise Failure(f"{' '.join(cmd)}: exit {p.returncode}, expected {expect}\n"
                      f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


# ---------------------------------------------------------------- files

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, info in header.items():
        check(info["dtype"] == "F32", f"{name}: dtype {info['dtype']}")
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    return tensors, meta


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def write_idx(path, array, opener=open):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def fashion_subset(work, count, which="train", gz=True):
    """The first `count` examples of Fashion-MNIST as IDX files; returns (images, labels) paths."""
    prefix = "train" if which == "train" else "t10k"
    images = load_idx(f"{FASHION}/{prefix}-images-idx3-ubyte.gz")[:count]
    labels = load_idx(f"{FASHION}/{prefix}-labels-idx1-ubyte.gz")[:count]
    ext = ".gz" if gz else ""
    ip = os.path.join(work, f"{which}{count}-images{ext}")
    lp = os.path.join(work, f"{which}{count}-labels{ext}")
    opener = gzip.open if gz else open
    write_idx(ip, images, opener)
    write_idx(lp, labels, opener)
    return ip, lp


def idx_spec(ip, lp, scale="1/255"):
    return f'idx("{ip}", "{lp}", scale={scale})'


def compile_model(args, source, name, *extra):
    exe = os.path.join(args.work, name)
    run([args.nnc, source, "-o", exe, *extra])
    return exe


# ---------------------------------------------------------------- NumPy reference

def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


ACTS = {
    "tanh": (np.tanh, lambda y: 1 - y * y),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda y: y * (1 - y)),
    "relu": (lambda z: np.maximum(z, 0), lambda y: (y > 0).astype(np.float64)),
    None: (lambda z: z, lambda y: np.ones_like(y)),
}


def mlp_grads(params, layers, x, y_true, loss):
    """Forward and backward of a dense stack in float64. layers: [(name, activation), ...]."""
    hs = [x]
    for name, act in layers:
        z = hs[-1] @ params[name + ".weight"].T + params[name + ".bias"]
        hs.append(ACTS[act][0](z))
    n = x.shape[0]
    out = hs[-1]
    if loss == "cross_entropy":
        d = softmax(out)
        d[np.arange(n), y_true] -= 1
        d /= n
    else:
        d = 2 * (out - y_true) / (out.shape[1] * n)
    grads = {}
    for i in range(len(layers) - 1, -1, -1):
        name, act = layers[i]
        d = d * ACTS[act][1](hs[i + 1])
        grads[name + ".weight"] = d.T @ hs[i]
        grads[name + ".bias"] = d.sum(axis=0)
        d = d @ params[name + ".weight"]
    return grads


def sgd_momentum_epoch(params, layers, x, y, batch, lr, momentum, loss):
    """One epoch in file order, PyTorch's SGD: buf = g (first step), then buf = mu*buf + g."""
    bufs = {}
    for start in range(0, len(x), batch):
        g = mlp_grads(params, layers, x[start:start + batch], y[start:start + batch], loss)
        for k in params:
            bufs[k] = g[k] if k not in bufs else momentum * bufs[k] + g[k]
            params[k] = params[k] - lr * bufs[k]
    return params


def init_params(layers, sizes, seed):
    rng = np.random.default_rng(seed)
    params = {}
    for (name, _), k, n in zip(layers, sizes[:-1], sizes[1:]):
        params[name + ".weight"] = rng.uniform(-0.3, 0.3, (n, k)).astype(np.float32).astype(np.float64)
        params[name + ".bias"] = rng.uniform(-0.1, 0.1, n).astype(np.float32).astype(np.float64)
    return params


def compare(got, want, tol, what):
    worst = 0.0
    for k in want:
        check(k in got, f"{what}: tensor {k} missing from the checkpoint")
        check(got[k].shape == want[k].shape, f"{what}: {k} shape {got[k].shape} != {want[k].shape}")
        worst = max(worst, float(np.max(np.abs(got[k] - want[k]))))
    print(f"{what}: max |nnc - reference| over all weights = {worst:.3g} (tolerance {tol})")
    check(worst <= tol, f"{what}: weights differ from the reference by {worst} > {tol}")


def write_features_csv(path, xs, prefix="x"):
    """A header and one row per example; float64 values that are exact float32 numbers."""
    with open(path, "w") as f:
        f.write(",".join(f"{prefix}{i}" for i in range(xs.shape[1])) + "\n")
        for row in xs:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return path


def write_training_csv(path, xs, ts):
    """Features x0.. then targets t0.., one row per example (exact float32 values); returns the
    csv(...) data spec that reads them."""
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(xs.shape[1])] + [f"t{i}" for i in range(ts.shape[1])]) + "\n")
        for x, t in zip(xs, ts):
            f.write(",".join(repr(float(v)) for v in list(x) + list(t)) + "\n")
    targets = ",".join(f"t{i}" for i in range(ts.shape[1]))
    return f'csv("{path}", target="{targets}")'


def predict_rows(exe, ckpt, data):
    """predict's output as a float array, one row per example (the header line skipped)."""
    out = run([exe, "predict", "--load", ckpt, data]).stdout.strip().split("\n")
    return np.array([[float(v) for v in r.split(",")] for r in out if r and not r[0].isalpha()])


def check_gradcheck(args, model, seeds, bugs):
    """gradcheck passes for each seed, and fails (exit 1, FAIL) for each injected wrong rule."""
    exe = compile_model(args, os.path.join(MODELS, model), "good")
    for seed in seeds:
        print(model, run([exe, "gradcheck", "--seed", seed]).stdout.strip().split("\n")[-1])
    for op in bugs:
        exe = compile_model(args, os.path.join(MODELS, model), "bad", f"--inject-grad-bug={op}")
        p = run([exe, "gradcheck"], expect=1)
        check("FAIL" in p.stdout + p.stderr, f"{model}: gradcheck with a wrong {op} gradient did not report FAIL")


# ---------------------------------------------------------------- tests

def test_sgd_reference(args):
    """One epoch of SGD+momentum in file order from given weights == NumPy, within 1e-5."""
    layers = [("dense0", "tanh"), ("dense1", "sigmoid"), ("dense2", "relu"), ("dense3", None)]
    sizes = [784, 24, 16, 12, 10]
    ip, lp = fashion_subset(args.work, 200)  # 200 = 6 full batches of 32 and a partial one of 8
    exe = compile_model(args, os.path.join(MODELS, "sgd_mlp.nn"), "sgd_mlp")
    params = init_params(layers, sizes, seed=7)
    init = os.path.join(args.work, "init.safetensors")
    write_safetensors(init, params)
    out = os.path.join(args.work, "after.safetensors")
    run([exe, "train", "--data", idx_spec(ip, lp), "--load", init, "--save", out, "--epochs", "1",
         "--batch", "32", "--no-shuffle", "--quiet"])
    got, meta = read_safetensors(out)
    x = load_idx(ip).reshape(200, 784).astype(np.float32).astype(np.float64) * np.float32(1 / 255)
    y = load_idx(lp).astype(np.int64)
    want = sgd_momentum_epoch(params, layers, x, y, 32, 0.05, 0.9, "cross_entropy")
    compare(got, want, 1e-5, "sgd momentum, 1 epoch")


def test_csv_regression_reference(args):
    """CSV loading (header, target column by name) + mse training == NumPy."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (23, 3)).round(4)
    y = (x @ np.array([0.5, -1.0, 2.0]) + 0.25).round(4)
    path = os.path.join(args.work, "table.csv")
    with open(path, "w") as f:
        f.write("a,b,y,c\n")  # the target sits between features: features keep file order
        for row, t in zip(x, y):
            f.write(f"{row[0]},{row[1]},{t},{row[2]}\n")
    exe = compile_model(args, os.path.join(MODELS, "regression.nn"), "regression")
    layers = [("dense0", "relu"), ("dense1", None)]
    params = init_params(layers, [3, 8, 1], seed=11)
    init = os.path.join(args.work, "init.safetensors")
    write_safetensors(init, params)
    out = os.path.join(args.work, "after.safetensors")
    log = os.path.join(args.work, "log.jsonl")
    run([exe, "train", "--data", f'csv("{path}", target="y")', "--load", init, "--save", out, "--epochs", "1",
         "--no-shuffle", "--quiet", "--log", log])
    got, _ = read_safetensors(out)
    xs = x.astype(np.float32).astype(np.float64)
    ys = y.astype(np.float32).astype(np.float64).reshape(-1, 1)
    want = sgd_momentum_epoch(params, layers, xs, ys, 5, 0.01, 0.5, "mse")
    compare(got, want, 1e-5, "csv regression, 1 epoch")
    with open(log) as f:
        entry = json.loads(f.readline())
    for key in ["epoch", "train_loss", "val_loss", "train_mae", "train_rmse", "seconds", "samples_per_sec"]:
        check(key in entry, f"log entry lacks '{key}': {entry}")


def test_fashion_train_small(args):
    """The example trains: 2 epochs on 6000 examples reach > 0.75 validation accuracy;
    the log, checkpoint, eval and predict agree with each other."""
    ip, lp = fashion_subset(args.work, 6000)
    vip, vlp = fashion_subset(args.work, 1000, "test")
    exe = compile_model(args, os.path.join(EXAMPLES, "fashion_mlp.nn"), "fashion_mlp")
    ckpt = os.path.join(args.work, "model.safetensors")
    log = os.path.join(args.work, "log.jsonl")
    p = run([exe, "train", "--data", idx_spec(ip, lp), "--validate", idx_spec(vip, vlp), "--epochs", "2",
             "--save", ckpt, "--log", log, "--quiet"])
    entries = [json.loads(line) for line in open(log)]
    check(len(entries) == 2, f"expected 2 log entries, got {len(entries)}")
    acc = entries[-1]["val_accuracy"]
    print(f"validation accuracy after 2 epochs on 6000 examples: {acc:.4f}")
    check(acc > 0.75, f"validation accuracy {acc} <= 0.75")
    check(entries[1]["train_loss"] < entries[0]["train_loss"], "training loss did not decrease")
    tensors, meta = read_safetensors(ckpt)
    check(tensors["dense0.weight"].shape == (256, 784), "dense0.weight has the wrong shape")
    # eval on the validation set reproduces the logged validation metrics
    e = run([exe, "eval", "--load", ckpt, "--data", idx_spec(vip, vlp)])
    check(f"{acc:.4f}" in e.stdout, f"eval output does not show accuracy {acc:.4f}:\n{e.stdout}")
    # predict: one row per example, probabilities summing to 1 and the arg-max class
    pred = run([exe, "predict", "--load", ckpt, vip])
    rows = [r for r in pred.stdout.strip().split("\n") if r and not r[0].isalpha()]
    check(len(rows) == 1000, f"predict printed {len(rows)} rows for 1000 examples")
    first = [float(v) for v in rows[0].split(",")]
    check(abs(sum(first[:10]) - 1) < 1e-4, f"probabilities sum to {sum(first[:10])}")
    check(int(first[10]) == int(np.argmax(first[:10])), "the class column is not the arg-max")
    labels = load_idx(vlp)
    predicted = np.array([int(float(r.split(",")[10])) for r in rows])
    pacc = float(np.mean(predicted == labels))
    check(abs(pacc - acc) < 1e-3, f"predict's accuracy {pacc} != logged val accuracy {acc}")


def test_gradcheck(args):
    """gradcheck passes on every example and on the test models, and fails (exit 1) on a
    deliberately wrong backward rule."""
    examples = sorted(os.path.join(EXAMPLES, f) for f in os.listdir(EXAMPLES) if f.endswith(".nn"))
    # text_gpt at d=16 and a context of 8: the float64 twin is unoptimized, and 54 tensors of
    # the full model would take minutes to check
    smaller = {"text_gpt.nn": ["-D", "d=16", "-D", "ctx=8"],
               # the fortunes classifiers with a vocabulary of 50 and width 8 (0.1-5 s each)
               "text_bag.nn": ["-D", "vocab=50", "-D", "d=8"],
               "text_encoder.nn": ["-D", "vocab=50", "-D", "d=8", "-D", "heads=2"],
               "text_lstm.nn": ["-D", "vocab=50", "-D", "d=8", "-D", "hidden=8"]}
    for source in examples + [os.path.join(MODELS, "sgd_mlp.nn"), os.path.join(MODELS, "regression.nn")]:
        exe = compile_model(args, source, "good", *smaller.get(os.path.basename(source), []))
        p = run([exe, "gradcheck"])
        print(p.stdout.strip().split("\n")[-1])
    for op in ["dense", "tanh", "relu"]:
        exe = compile_model(args, os.path.join(MODELS, "sgd_mlp.nn"), "bad", f"--inject-grad-bug={op}")
        p = run([exe, "gradcheck"], expect=1)
        check("FAIL" in p.stdout + p.stderr, f"gradcheck with a wrong {op} gradient did not report FAIL")


def test_bad_inputs(args):
    """A missing data file and a truncated .gz each end in a clear message and exit 1."""
    exe = compile_model(args, os.path.join(EXAMPLES, "fashion_mlp.nn"), "fashion_mlp")
    p = run([exe, "train", "--data", 'idx("no-such-images.gz", "no-such-labels.gz")', "--epochs", "1"], expect=1)
    check("no-such-images.gz" in p.stderr, f"missing file not named:\n{p.stderr}")
    ip, lp = fashion_subset(args.work, 500)
    with open(ip, "rb") as f:
        data = f.read()
    truncated = os.path.join(args.work, "truncated-images.gz")
    with open(truncated, "wb") as f:
        f.write(data[:len(data) // 2])
    p = run([exe, "train", "--data", idx_spec(truncated, lp), "--epochs", "1"], expect=1)
    check("truncated-images.gz" in p.stderr, f"truncated file not named:\n{p.stderr}")
    print(p.stderr.strip())
    # a checkpoint cut short is refused with a message, not a crash
    ckpt = os.path.join(args.work, "m.safetensors")
    run([exe, "train", "--data", idx_spec(ip, lp), "--epochs", "1", "--save", ckpt, "--quiet"])
    with open(ckpt, "rb") as f:
        whole = f.read()
    cut = os.path.join(args.work, "cut.safetensors")
    with open(cut, "wb") as f:
        f.write(whole[:len(whole) - 1000])
    p = run([exe, "eval", "--load", cut, "--data", idx_spec(ip, lp)], expect=1)
    check("cut.safetensors" in p.stderr, f"truncated checkpoint not named:\n{p.stderr}")


def test_compile_errors(args):
    """nnc exits 1 with a located message for a syntax error and an unknown name."""
    bad = os.path.join(args.work, "bad.nn")
    with open(bad, "w") as f:
        f.write("input x : float[4]\ntarget t : class[2]\ny = x -> dense(2\nloss cross_entropy(y, t)\n")
    p = run([args.nnc, bad, "-o", os.path.join(args.work, "bad")], expect=1)
    check("bad.nn:4:1: error:" in p.stderr, f"syntax error not located:\n{p.stderr}")
    check(not os.path.exists(os.path.join(args.work, "bad")), "a failed compile left an output file")
    with open(bad, "w") as f:
        f.write("input x : float[4]\ntarget t : class[2]\ny = x -> dense(2)\nloss cross_entropy(z, t)\n")
    p = run([args.nnc, "check", bad], expect=1)
    check("bad.nn:4:20: error: unknown name 'z'" in p.stderr, f"unknown name not reported:\n{p.stderr}")


# ---------------------------------------------------------------- convolution reference

def np_conv2d(x, w, b, stride, pad):
    """x [C,H,W], w [F,C,K,K] -> [F,OH,OW], PyTorch's cross-correlation."""
    C, H, W = x.shape
    F, _, K, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    out = np.zeros((F, OH, OW))
    for oy in range(OH):
        for ox in range(OW):
            patch = xp[:, oy * stride:oy * stride + K, ox * stride:ox * stride + K]
            out[:, oy, ox] = np.tensordot(w, patch, axes=([1, 2, 3], [0, 1, 2])) + b
    return out


def np_maxpool(x, k, stride):
    C, H, W = x.shape
    OH, OW = (H - k) // stride + 1, (W - k) // stride + 1
    out = np.zeros((C, OH, OW))
    for oy in range(OH):
        for ox in range(OW):
            out[:, oy, ox] = x[:, oy * stride:oy * stride + k, ox * stride:ox * stride + k].max(axis=(1, 2))
    return out


def test_conv_forward_reference(args):
    """conv2d (stride 2, pad 1, pad="same"), leaky_relu, overlapping maxpool, fused relu:
    predict's output equals a NumPy forward pass from the same weights."""
    exe = compile_model(args, os.path.join(MODELS, "conv_ops.nn"), "conv_ops")
    rng = np.random.default_rng(5)
    params = {
        "conv2d0.weight": rng.uniform(-0.5, 0.5, (3, 2, 3, 3)), "conv2d0.bias": rng.uniform(-0.2, 0.2, 3),
        "conv2d1.weight": rng.uniform(-0.5, 0.5, (4, 3, 3, 3)), "conv2d1.bias": rng.uniform(-0.2, 0.2, 4),
    }
    params = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
    init = os.path.join(args.work, "w.safetensors")
    write_safetensors(init, params)
    xs = rng.uniform(-1, 1, (5, 2 * 7 * 9)).astype(np.float32).astype(np.float64)
    path = os.path.join(args.work, "x.csv")
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(126)) + "\n")
        for row in xs:
            f.write(",".join(repr(float(np.float32(v))) for v in row) + "\n")
    p = run([exe, "predict", "--load", init, path])
    rows = [r for r in p.stdout.strip().split("\n") if r and not r[0].isalpha()]
    check(len(rows) == 5, f"predict printed {len(rows)} rows for 5 examples:\n{p.stdout}")
    worst = 0.0
    for row, x in zip(rows, xs):
        h = np_conv2d(x.reshape(2, 7, 9), params["conv2d0.weight"], params["conv2d0.bias"], 2, 1)
        h = np.where(h > 0, h, 0.1 * h)
        h = np_maxpool(h, 2, 1)
        h = np.maximum(np_conv2d(h, params["conv2d1.weight"], params["conv2d1.bias"], 1, 1), 0)
        got = np.array([float(v) for v in row.split(",")])
        check(got.shape == (48,), f"expected 48 outputs, got {got.shape}")
        worst = max(worst, float(np.max(np.abs(got - h.reshape(-1)))))
    print(f"conv forward: max |nnc - numpy| = {worst:.3g}")
    check(worst < 1e-5, f"conv forward differs from NumPy by {worst}")


def test_conv1d_forward_reference(args):
    """conv1d with stride 2 and padding: predict's output equals NumPy; gradcheck passes and
    catches a wrong convolution gradient."""
    src = os.path.join(args.work, "c1.nn")
    with open(src, "w") as f:
        f.write("input x : float[3, 11]\ntarget t : float[24]\n"
                "y = x -> conv1d(4, 3, stride=2, pad=1) -> flatten\nloss mse(y, t)\n")
    exe = compile_model(args, src, "c1")
    rng = np.random.default_rng(4)
    w = rng.uniform(-0.5, 0.5, (4, 3, 3)).astype(np.float32).astype(np.float64)
    b = rng.uniform(-0.2, 0.2, 4).astype(np.float32).astype(np.float64)
    init = os.path.join(args.work, "w.safetensors")
    write_safetensors(init, {"conv1d0.weight": w, "conv1d0.bias": b})
    xs = rng.uniform(-1, 1, (3, 33)).astype(np.float32).astype(np.float64)
    got = predict_rows(exe, init, write_features_csv(os.path.join(args.work, "x.csv"), xs))
    worst = 0.0
    for row, x in zip(got, xs):
        xp = np.pad(x.reshape(3, 11), ((0, 0), (1, 1)))
        want = np.array([[np.sum(w[f] * xp[:, 2 * o:2 * o + 3]) + b[f] for o in range(6)] for f in range(4)])
        worst = max(worst, float(np.max(np.abs(row - want.reshape(-1)))))
    print(f"conv1d forward: max |nnc - numpy| = {worst:.3g}")
    check(len(got) == 3 and worst < 1e-5, f"conv1d forward differs from NumPy by {worst}")
    check_gradcheck(args, "conv1d.nn", ["1"], ["conv2d"])


def test_conv_gradcheck(args):
    """gradcheck passes for convolutions, pools (2-D and 1-D; overlapping windows, and 2x2 windows
    that tile, with and without a relu before them), dropout, leaky_relu, residual sums; and fails
    when conv2d's or maxpool's backward rule is wrong."""
    for name in ["conv_ops.nn", "pool_dropout.nn"]:
        exe = compile_model(args, os.path.join(MODELS, name), "good")
        for seed in ["1", "2"]:
            p = run([exe, "gradcheck", "--seed", seed])
            print(name, p.stdout.strip().split("\n")[-1])
    for op in ["conv2d", "maxpool", "leaky_relu"]:
        exe = compile_model(args, os.path.join(MODELS, "conv_ops.nn"), "bad", f"--inject-grad-bug={op}")
        p = run([exe, "gradcheck"], expect=1)
        check("FAIL" in p.stdout + p.stderr, f"gradcheck with a wrong {op} gradient did not report FAIL")
    check_gradcheck(args, "pool_rows.nn", ["1", "2"], ["maxpool"])


def np_conv_general(x, w, b, stride, pad_h, pad_w):
    """x [N,C,H,W], w [F,C,KH,KW] -> [N,F,OH,OW] (PyTorch's cross-correlation) and the padded x."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    OH, OW = (H + 2 * pad_h - KH) // stride + 1, (W + 2 * pad_w - KW) // stride + 1
    out = np.zeros((N, F, OH, OW))
    for ky in range(KH):
        for kx in range(KW):
            patch = xp[:, :, ky:ky + stride * (OH - 1) + 1:stride, kx:kx + stride * (OW - 1) + 1:stride]
            out += np.einsum("fc,ncyx->nfyx", w[:, :, ky, kx], patch)
    return out + (0 if b is None else b[None, :, None, None]), xp


def np_conv_weight_grad(dz, xp, w_shape, stride):
    """dW[f,c,ky,kx] = sum over examples and positions of dz * the padded input under the window."""
    F, C, KH, KW = w_shape
    OH, OW = dz.shape[2], dz.shape[3]
    dw = np.zeros(w_shape)
    for ky in range(KH):
        for kx in range(KW):
            patch = xp[:, :, ky:ky + stride * (OH - 1) + 1:stride, kx:kx + stride * (OW - 1) + 1:stride]
            dw[:, :, ky, kx] = np.einsum("nfyx,ncyx->fc", dz, patch)
    return dw


def sgd_step_both_threads(args, exe, init, xs, ts, name, what):
    """One epoch of one full batch (xs, ts as a CSV of features x* and targets t*) from the
    checkpoint init, with --threads 1 and 2; checks the two write identical weights and returns
    the tensors after the step."""
    data = write_training_csv(os.path.join(args.work, "d.csv"), xs, ts)
    blobs = []
    for threads in ["1", "2"]:
        ckpt = os.path.join(args.work, f"{name}-{threads}.safetensors")
        run([exe, "train", "--data", data, "--validate", "none", "--epochs", "1",
             "--batch", str(len(xs)), "--no-shuffle", "--load", init, "--save", ckpt, "--threads", threads, "--quiet"])
        blobs.append(open(ckpt, "rb").read())
    check(blobs[0] == blobs[1], f"{what}: --threads 2 changed the weights")
    return read_safetensors(ckpt)[0]


def test_conv_direct_reference(args):
    """The direct convolution of layers with few input channels (1-3; conv1d too), odd sizes,
    stride 1-3, pad 0/1/"same", fused relu/tanh/sigmoid, with and without bias: predict equals
    NumPy's forward pass, one SGD step of the float32 training kernels (mse over a batch of 19,
    cut into uneven chunks) equals NumPy's weight and bias gradients, and --threads 1 and 2 write
    identical weights."""
    acts = {"relu": (lambda z: np.maximum(z, 0), lambda y: (y > 0) * 1.0), "tanh": (np.tanh, lambda y: 1 - y * y),
            "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda y: y * (1 - y)), None: (lambda z: z, lambda y: 1.0)}
    # (input shape, layer call, filters, kernel, stride, pad, bias, activation)
    cases = [([1, 13, 11], "conv2d(5, 3, stride=2)", 5, 3, 2, 0, True, "relu"),
             ([3, 9, 10], 'conv2d(7, 5, pad="same")', 7, 5, 1, 2, True, "tanh"),
             ([2, 5, 19], "conv2d(13, 3, pad=1, bias=false)", 13, 3, 1, 1, False, "sigmoid"),
             ([1, 10, 10], "conv2d(3, 4, stride=3, pad=1)", 3, 4, 3, 1, True, None),
             ([3, 37], "conv1d(4, 3, stride=2, pad=1)", 4, 3, 2, 1, True, "relu")]
    rng = np.random.default_rng(16)
    n, lr = 19, 0.5
    for shape, call, F, K, S, P, bias, act in cases:
        one_d = len(shape) == 2
        C, H, W = (shape[0], 1, shape[1]) if one_d else shape
        KH, PH = (1, 0) if one_d else (K, P)
        OH, OW = (H + 2 * PH - KH) // S + 1, (W + 2 * P - K) // S + 1
        size = F * OH * OW
        src = os.path.join(args.work, "direct.nn")
        with open(src, "w") as f:
            f.write(f"input x : float[{', '.join(map(str, shape))}]\ntarget t : float[{size}]\n"
                    f"y = x -> {call}{' -> ' + act if act else ''} -> flatten\nloss mse(y, t)\n"
                    f"train {{ optimizer = sgd(lr={lr}) }}\n")
        exe = compile_model(args, src, "direct")
        layer = "conv1d0" if one_d else "conv2d0"
        w = rng.uniform(-0.5, 0.5, (F, C, KH, K)).astype(np.float32).astype(np.float64)
        b = rng.uniform(-0.2, 0.2, F).astype(np.float32).astype(np.float64) if bias else None
        init = os.path.join(args.work, "w.safetensors")
        tensors = {f"{layer}.weight": w.reshape(F, C, K) if one_d else w}
        if bias:
            tensors[f"{layer}.bias"] = b
        write_safetensors(init, tensors)
        xs = rng.uniform(-1, 1, (n, C * H * W)).astype(np.float32).astype(np.float64)
        ts = rng.uniform(-1, 1, (n, size)).astype(np.float32).astype(np.float64)
        z, xp = np_conv_general(xs.reshape(n, C, H, W), w, b, S, PH, P)
        y = acts[act][0](z)
        got = predict_rows(exe, init, write_features_csv(os.path.join(args.work, "x.csv"), xs))
        err = float(np.max(np.abs(got - y.reshape(n, size))))
        check(got.shape == (n, size) and err < 1e-5, f"{call}: forward differs from NumPy by {err}")
        after = sgd_step_both_threads(args, exe, init, xs, ts, "direct", call)
        dz = 2 * (y - ts.reshape(y.shape)) / (size * n) * acts[act][1](y)
        want_w = w - lr * np_conv_weight_grad(dz, xp, w.shape, S)
        err_w = float(np.max(np.abs(after[f"{layer}.weight"].reshape(w.shape) - want_w)))
        err_b = float(np.max(np.abs(after[f"{layer}.bias"] - (b - lr * dz.sum(axis=(0, 2, 3)))))) if bias else 0.0
        print(f"{call} -> {act}: forward {err:.2g}, weight {err_w:.2g}, bias {err_b:.2g} (max |nnc - numpy|)")
        check(err_w < 1e-5 and err_b < 1e-5, f"{call}: one SGD step differs from NumPy (weight {err_w}, bias {err_b})")


def np_conv_input_grad(dz, w, x_shape, stride, pad_h, pad_w):
    """dx[n,c,iy,ix] = sum over filters and window positions of dz * the weight that read x there."""
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    OH, OW = dz.shape[2], dz.shape[3]
    dxp = np.zeros((N, C, H + 2 * pad_h, W + 2 * pad_w))
    for ky in range(KH):
        for kx in range(KW):
            dxp[:, :, ky:ky + stride * (OH - 1) + 1:stride, kx:kx + stride * (OW - 1) + 1:stride] += \
                np.einsum("nfyx,fc->ncyx", dz, w[:, :, ky, kx])
    return dxp[:, :, pad_h:pad_h + H, pad_w:pad_w + W]


def test_conv_implicit_reference(args):
    """The implicit-GEMM convolution of layers with more than 4 input channels (forward, dW, and
    dx at stride 1 as a convolution of the padded dy): two stacked layers with odd sizes, stride
    1-2, pad 0/1/2/"same", kernels 1/3/5, conv1d, filter counts around the panel widths (3, 10,
    16, 20, 33), fused relu/sigmoid. predict equals NumPy's forward pass; one SGD step (mse over a
    batch of 19, uneven chunks) equals NumPy's gradients for both layers' weights and biases (the
    first layer's through the second's dx); --threads 1 and 2 write identical weights."""
    acts = {"relu": (lambda z: np.maximum(z, 0), lambda y: (y > 0) * 1.0),
            "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda y: y * (1 - y)), None: (lambda z: z, lambda y: 1.0)}
    # (input shape, first layer (F, K, S, P), second layer (F, K, S, P), second's bias, activation)
    cases = [([6, 9, 11], (8, 3, 1, 1), (20, 3, 1, 1), True, "relu"),
             ([5, 12, 10], (7, 3, 2, 1), (3, 5, 1, 2), True, "sigmoid"),
             ([8, 13, 13], (16, 3, 1, 0), (33, 3, 2, 1), False, None),
             ([5, 7, 7], (6, 1, 1, 0), (10, 1, 1, 0), True, None),
             ([6, 40], (9, 3, 1, 1), (16, 5, 1, 2), True, "relu")]
    rng = np.random.default_rng(17)
    n, lr = 19, 0.5
    for shape, (F1, K1, S1, P1), (F2, K2, S2, P2), bias2, act in cases:
        one_d = len(shape) == 2
        C, H, W = (shape[0], 1, shape[1]) if one_d else shape
        kind = "conv1d" if one_d else "conv2d"
        kh1, ph1, kh2, ph2 = (1, 0, 1, 0) if one_d else (K1, P1, K2, P2)
        H1, W1 = (H + 2 * ph1 - kh1) // S1 + 1, (W + 2 * P1 - K1) // S1 + 1
        H2, W2 = (H1 + 2 * ph2 - kh2) // S2 + 1, (W1 + 2 * P2 - K2) // S2 + 1
        size = F2 * H2 * W2
        first = f"{kind}({F1}, {K1}, stride={S1}, pad={P1})"
        second = f"{kind}({F2}, {K2}, stride={S2}, pad={P2}{'' if bias2 else ', bias=false'})"
        src = os.path.join(args.work, "implicit.nn")
        with open(src, "w") as f:
            f.write(f"input x : float[{', '.join(map(str, shape))}]\ntarget t : float[{size}]\n"
                    f"y = x -> {first} -> tanh -> {second}{' -> ' + act if act else ''} -> flatten\nloss mse(y, t)\n"
                    f"train {{ optimizer = sgd(lr={lr}) }}\n")
        exe = compile_model(args, src, "implicit")
        names = [f"{kind}0", f"{kind}1"]
        w1 = rng.uniform(-0.4, 0.4, (F1, C, kh1, K1)).astype(np.float32).astype(np.float64)
        b1 = rng.uniform(-0.2, 0.2, F1).astype(np.float32).astype(np.float64)
        w2 = rng.uniform(-0.3, 0.3, (F2, F1, kh2, K2)).astype(np.float32).astype(np.float64)
        b2 = rng.uniform(-0.2, 0.2, F2).astype(np.float32).astype(np.float64) if bias2 else None
        init = os.path.join(args.work, "w.safetensors")
        tensors = {f"{names[0]}.weight": w1.reshape(F1, C, K1) if one_d else w1, f"{names[0]}.bias": b1,
                   f"{names[1]}.weight": w2.reshape(F2, F1, K2) if one_d else w2}
        if bias2:
            tensors[f"{names[1]}.bias"] = b2
        write_safetensors(init, tensors)
        xs = rng.uniform(-1, 1, (n, C * H * W)).astype(np.float32).astype(np.float64)
        ts = rng.uniform(-1, 1, (n, size)).astype(np.float32).astype(np.float64)
        z1, xp1 = np_conv_general(xs.reshape(n, C, H, W), w1, b1, S1, ph1, P1)
        h = np.tanh(z1)
        z2, hp = np_conv_general(h, w2, b2, S2, ph2, P2)
        y = acts[act][0](z2)
        got = predict_rows(exe, init, write_features_csv(os.path.join(args.work, "x.csv"), xs))
        err = float(np.max(np.abs(got - y.reshape(n, size))))
        check(got.shape == (n, size) and err < 1e-5, f"{first} -> {second}: forward differs from NumPy by {err}")
        after = sgd_step_both_threads(args, exe, init, xs, ts, "implicit", f"{first} -> {second}")
        dz2 = 2 * (y - ts.reshape(y.shape)) / (size * n) * acts[act][1](y)
        dz1 = np_conv_input_grad(dz2, w2, h.shape, S2, ph2, P2) * (1 - h * h)
        want = {f"{names[1]}.weight": w2 - lr * np_conv_weight_grad(dz2, hp, w2.shape, S2),
                f"{names[0]}.weight": w1 - lr * np_conv_weight_grad(dz1, xp1, w1.shape, S1),
                f"{names[0]}.bias": b1 - lr * dz1.sum(axis=(0, 2, 3))}
        if bias2:
            want[f"{names[1]}.bias"] = b2 - lr * dz2.sum(axis=(0, 2, 3))
        errs = {k: float(np.max(np.abs(after[k].reshape(v.shape) - v))) for k, v in want.items()}
        moved = min(float(np.max(np.abs(v - tensors[k].reshape(v.shape)))) for k, v in want.items())
        check(moved > 1e-3, f"{first} -> {second}: the step moves a tensor by only {moved}: the check would be void")
        print(f"{first} -> tanh -> {second} -> {act}: forward {err:.2g}, step >= {moved:.2g}, "
              + ", ".join(f"{k} {e:.2g}" for k, e in errs.items()) + " (max |nnc - numpy|)")
        check(all(e < 1e-5 for e in errs.values()), f"{first} -> {second}: one SGD step differs from NumPy: {errs}")


def test_conv_winograd_reference(args):
    """Inference (predict) runs 3x3 stride-1 convolutions whose channels and filters are multiples
    of 16 as Winograd F(2x2, 3x3): odd output sizes (partial 2x2 tiles), pad 0/1/2, with and without bias,
    relu and sigmoid applied in the output transform, tanh after it, a batch of 19 (uneven
    chunks), 32 to 64 channels over several vectors, a 1 x 1 image; for the native CPU, AVX2 and
    SSE2 (16, 8 and 4 lanes). predict equals NumPy's forward pass within 1e-5 (training keeps the
    implicit GEMM: test_conv_implicit_reference)."""
    acts = {"relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
            "tanh": np.tanh, None: lambda z: z}
    # (input shape, [(F, P, bias, activation)] per layer)
    cases = [([16, 7, 9], [(16, 1, True, "tanh"), (32, 0, True, "relu"), (16, 2, False, None)]),
             ([32, 6, 5], [(48, 1, True, "sigmoid"), (16, 1, True, None)]),
             ([16, 3, 4], [(16, 0, False, "relu")]),
             ([16, 1, 1], [(32, 1, True, None)]),
             ([64, 4, 4], [(48, 1, True, "relu"), (16, 1, True, "tanh")])]
    rng = np.random.default_rng(23)
    n = 19
    for shape, layers in cases:
        C, H, W = shape
        chain, params, dims = [], {}, (C, H, W)
        for i, (F, P, bias, act) in enumerate(layers):
            chain.append(f"conv2d({F}, 3, pad={P}{'' if bias else ', bias=false'})" + (f" -> {act}" if act else ""))
            params[f"conv2d{i}.weight"] = rng.uniform(-0.25, 0.25, (F, dims[0], 3, 3)).astype(np.float32).astype(np.float64)
            if bias:
                params[f"conv2d{i}.bias"] = rng.uniform(-0.2, 0.2, F).astype(np.float32).astype(np.float64)
            dims = (F, dims[1] + 2 * P - 2, dims[2] + 2 * P - 2)
        size = dims[0] * dims[1] * dims[2]
        src = os.path.join(args.work, "winograd.nn")
        with open(src, "w") as f:
            f.write(f"input x : float[{C}, {H}, {W}]\ntarget t : float[{size}]\n"
                    f"y = x -> {' -> '.join(chain)} -> flatten\nloss mse(y, t)\n")
        init = os.path.join(args.work, "w.safetensors")
        write_safetensors(init, params)
        xs = rng.uniform(-1, 1, (n, C * H * W)).astype(np.float32).astype(np.float64)
        h = xs.reshape(n, C, H, W)
        for i, (F, P, bias, act) in enumerate(layers):
            z, _ = np_conv_general(h, params[f"conv2d{i}.weight"], params.get(f"conv2d{i}.bias"), 1, P, P)
            h = acts[act](z)
        data = write_features_csv(os.path.join(args.work, "x.csv"), xs)
        # 16-lane vectors natively (AVX-512 where the host has it), 8 with AVX2, 4 with SSE2
        for cpu in ["native", "x86-64-v3", "generic"]:
            exe = compile_model(args, src, "winograd-" + cpu, f"--target-cpu={cpu}")
            got = predict_rows(exe, init, data)
            err = float(np.max(np.abs(got - h.reshape(n, size)))) if got.shape == (n, size) else float("inf")
            print(f"{shape} -> {' -> '.join(chain)} ({cpu}): max |predict - numpy| = {err:.2g}")
            check(err < 1e-5, f"{shape} -> {' -> '.join(chain)} ({cpu}): predict differs from NumPy by {err}")


def test_conv_direct_gradcheck(args):
    """gradcheck passes on the direct convolution's test models (1 and 3 input channels, stride
    2 and 3, pad 0/1/"same", odd sizes, fused activations, no bias) and fails when conv2d's
    backward rule is wrong."""
    check_gradcheck(args, "direct_conv1.nn", ["1", "2"], ["conv2d"])
    check_gradcheck(args, "direct_conv3.nn", ["1", "2"], ["conv2d"])


def test_threads_deterministic(args):
    """--threads 1, 2 and 3 give bit-identical checkpoints (dense and conv kernels split
    their row blocks across threads), and two runs with the same seed are identical."""
    ip, lp = fashion_subset(args.work, 640)
    # dropout over a conv output is large enough to run as a parallel task (its mask hashes the
    # element's global index, read from the kernel's shard argument inside the task)
    dropout_source = os.path.join(args.work, "conv_dropout.nn")
    with open(dropout_source, "w") as f:
        f.write("model conv_dropout\ninput image : float[1, 28, 28]\ntarget label : class[10]\n"
                "logits = image -> conv2d(8, 3, pad=1) -> dropout(0.5) -> relu -> maxpool(2) -> flatten -> dense(10)\n"
                "loss cross_entropy(logits, label)\n")
    for model in ["fashion_mlp", "fashion_cnn", "conv_dropout"]:
        source = dropout_source if model == "conv_dropout" else os.path.join(EXAMPLES, model + ".nn")
        exe = compile_model(args, source, model)
        blobs = []
        for threads in ["1", "2", "2", "3"]:
            ckpt = os.path.join(args.work, f"{model}-{threads}-{len(blobs)}.safetensors")
            run([exe, "train", "--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "1",
                 "--threads", threads, "--save", ckpt, "--quiet"])
            blobs.append(open(ckpt, "rb").read())
        check(blobs[0] == blobs[1], f"{model}: --threads 2 changed the weights")
        check(blobs[1] == blobs[2], f"{model}: two runs with the same seed differ")
        check(blobs[0] == blobs[3], f"{model}: --threads 3 changed the weights")
        print(f"{model}: identical checkpoints for 1, 2 and 3 threads")


def test_wide_tiles(args):
    """The kernels laid out for 64-byte vectors (AVX-512's tile shapes: 12 x 32 packed tiles, 16
    lanes), run on whatever this CPU is (LLVM splits the vectors), train the MLP and the CNN to the
    weights of the target's own layout within 1e-5 (the packed products sum each element in the
    same order; the dot-product tiles' lane sums differ), and their gradients pass gradcheck: a
    machine with AVX-512 runs these shapes for real, and this one may not have it."""
    ip, lp = fashion_subset(args.work, 300)  # 4 batches of 64 and one of 44
    for model in ["fashion_mlp", "fashion_cnn"]:
        source = os.path.join(EXAMPLES, model + ".nn")
        tensors = []
        for width in ["32", "64"]:
            exe = compile_model(args, source, f"{model}_v{width}", f"--vector-bytes={width}")
            ckpt = os.path.join(args.work, f"{model}_v{width}.safetensors")
            run([exe, "train", "--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "1", "--threads", "2",
                 "--no-shuffle", "--save", ckpt, "--quiet"])
            tensors.append(read_safetensors(ckpt)[0])
            if width == "64":
                out = run([exe, "gradcheck"]).stdout
                check("gradcheck: ok" in out, f"{model} with 64-byte vectors: gradcheck failed:\n{out}")
        worst, where = 0.0, None
        for name, value in tensors[0].items():
            if name.startswith("optimizer."):
                continue
            diff = float(np.max(np.abs(tensors[1][name] - value)) / max(1e-30, float(np.max(np.abs(value)))))
            if diff > worst:
                worst, where = diff, name
        check(worst <= 1e-5, f"{model}: 64-byte layout differs by {worst:.3g} (in {where}) > 1e-5")
        print(f"{model}: 64-byte vs 32-byte layout after one epoch: worst relative difference {worst:.2g}")


def checkpoint_tensors(path):
    """A checkpoint's tensor entries and data bytes (its metadata, which names the settings, left out)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    return header, data[8 + n:]


def test_fused_update_identical(args):
    """The optimizer update fused into the generated step (train_step_update: Adam and AdamW in
    one process without clipping) writes the same checkpoint bytes (weights, Adam's m and v) as
    train_step followed by the runtime's update, which --clip 1e30 selects (clipping needs the
    gradient norm first; a clip that large never scales): for the MLP, the CNN, a model with
    batchnorm (running statistics, not trainable) and layernorm, and one with attention, an lstm
    and dense layers per position (the image's rows as 28 positions); for Adam, AdamW, Adam's L2
    weight decay and beta1 < 0.5 (ATen's other lerp form); with 1 and 2 threads, over 2 epochs.
    bench says which form runs."""
    ip, lp = fashion_subset(args.work, 640)
    norm_source = os.path.join(args.work, "fused_norms.nn")
    with open(norm_source, "w") as f:
        f.write("model fused_norms\ninput image : float[1, 28, 28]\ntarget label : class[10]\n"
                "logits = image -> conv2d(4, 3) -> batchnorm -> relu -> maxpool(2) -> flatten -> dense(24)\n"
                "         -> layernorm -> relu -> dense(10)\n"
                "loss cross_entropy(logits, label)\n")
    seq_source = os.path.join(args.work, "fused_seq.nn")
    with open(seq_source, "w") as f:
        f.write("model fused_seq\ninput image : float[28, 28]\ntarget label : class[10]\n"
                "h = image -> dense(16) -> attention(2, causal=true) -> layernorm -> lstm(12, return=\"last\")\n"
                "logits = h -> dense(10)\nloss cross_entropy(logits, label)\n")
    optimizers = ["adam(lr=1e-3)", "adamw(lr=1e-3, weight_decay=0.1)", "adam(lr=1e-3, weight_decay=0.01)",
                  "adam(lr=1e-3, beta1=0.3)"]
    sources = {"fused_norms": norm_source, "fused_seq": seq_source}
    for model in ["fashion_mlp", "fashion_cnn", "fused_norms", "fused_seq"]:
        source = sources.get(model, os.path.join(EXAMPLES, model + ".nn"))
        exe = compile_model(args, source, model)
        bench = run([exe, "bench", "--batch", "8", "--steps", "1"]).stdout
        check("step (train_step + optimizer, fused; medians of the steps)" in bench and "update " in bench, f"{model}: bench shows no fused update:\n{bench}")
        for opt in optimizers if model in ("fashion_mlp", "fused_norms") else optimizers[:2]:
            blobs = {}
            for form, extra in [("fused-1", ["--threads", "1"]), ("fused-2", ["--threads", "2"]),
                                ("unfused", ["--threads", "2", "--clip", "1e30"])]:
                ckpt = os.path.join(args.work, f"{model}-{form}.safetensors")
                run([exe, "train", "--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "2",
                     "--optimizer", opt, "--save", ckpt, "--quiet", *extra])
                blobs[form] = checkpoint_tensors(ckpt)
            names = sorted(blobs["unfused"][0])
            check(any("adam_m" in n for n in names) and any("adam_v" in n for n in names), f"{model}: no Adam state in {names}")
            check(blobs["fused-1"] == blobs["unfused"], f"{model}, {opt}: the fused update differs from the runtime's")
            check(blobs["fused-2"] == blobs["unfused"], f"{model}, {opt}: the fused update with 2 threads differs")
            print(f"{model}, {opt}: fused (1 and 2 threads) and unfused checkpoints identical ({len(names)} tensors)")


def test_activation_forward_reference(args):
    """relu, leaky_relu, tanh, sigmoid, gelu (both forms), silu, softmax, log_softmax, dropout
    (identity outside training) and reshape: predict's output equals NumPy on random inputs of odd
    size; the bce loss reported by eval, and bce as a metric, equal its NumPy value."""
    import math
    rng = np.random.default_rng(9)
    xs = rng.uniform(-3, 3, (4, 7)).astype(np.float32).astype(np.float64)
    ts = rng.uniform(0, 1, (4, 7)).astype(np.float32).astype(np.float64)
    data = write_training_csv(os.path.join(args.work, "x.csv"), xs, ts)
    xpath = write_features_csv(os.path.join(args.work, "xonly.csv"), xs)
    erf = np.vectorize(math.erf)
    sm = lambda x: np.exp(x - x.max(axis=1, keepdims=True)) / np.exp(x - x.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)
    cases = {
        "relu": lambda x: np.maximum(x, 0),
        "leaky_relu(0.2)": lambda x: np.where(x > 0, x, 0.2 * x),
        "tanh": np.tanh,
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "gelu": lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))),
        'gelu(approximate="tanh")': lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))),
        "silu": lambda x: x / (1 + np.exp(-x)),
        "softmax": sm,
        "log_softmax": lambda x: np.log(sm(x)),
        "dropout(0.5)": lambda x: x,
        "reshape(7, 1) -> flatten": lambda x: x,
    }
    for op, ref in cases.items():
        src = os.path.join(args.work, "op.nn")
        with open(src, "w") as f:
            f.write(f"input x : float[7]\ntarget t : float[7]\ny = x -> {op}\nloss mse(y, t)\n")
        exe = compile_model(args, src, "op")
        p = run([exe, "predict", "--load", make_empty_ckpt(args), xpath])
        rows = [r for r in p.stdout.strip().split("\n") if r and not r[0].isalpha()]
        got = np.array([[float(v) for v in r.split(",")] for r in rows])
        err = float(np.max(np.abs(got - ref(xs))))
        print(f"{op:28} max |nnc - numpy| = {err:.2g}")
        check(err < 2e-6, f"{op}: forward differs from NumPy by {err}")
    # mean and sum over the only axis leave one value per example
    for op, ref in [("mean", lambda x: x.mean(axis=1, keepdims=True)), ("sum(axis=-1)", lambda x: x.sum(axis=1, keepdims=True))]:
        src = os.path.join(args.work, "reduce.nn")
        with open(src, "w") as f:
            f.write(f"input x : float[7]\ntarget t : float[1]\ny = x -> {op}\nloss mse(y, t)\n")
        exe = compile_model(args, src, "reduce")
        rows = [r for r in run([exe, "predict", "--load", make_empty_ckpt(args), xpath]).stdout.strip().split("\n")
                if r and not r[0].isalpha()]
        err = float(np.max(np.abs(np.array([[float(r)] for r in rows]) - ref(xs))))
        print(f"{op:28} max |nnc - numpy| = {err:.2g}")
        check(err < 2e-6, f"{op}: forward differs from NumPy by {err}")
    # bce: eval's loss is the mean over examples and elements of the stable logistic loss
    src = os.path.join(args.work, "bce.nn")
    with open(src, "w") as f:
        f.write("input x : float[7]\ntarget t : float[7]\nloss bce(x + 0, t)\n")
    exe = compile_model(args, src, "bce")
    p = run([exe, "eval", "--load", make_empty_ckpt(args), "--data", data])
    want = float(np.mean(np.maximum(xs, 0) - xs * ts + np.log1p(np.exp(-np.abs(xs)))))
    check(f"loss {want:.6f}" in p.stdout, f"bce loss: expected {want:.6f}, eval printed:\n{p.stdout}")
    print(f"bce loss {want:.6f} matches")
    # bce as a metric of an mse model: the same value, reported under its own name
    with open(src, "w") as f:
        f.write("input x : float[7]\ntarget t : float[7]\ny = x + 0\nloss bce(y, t)\nmetric bce(y, t)\nmetric accuracy(y, t)\n")
    exe = compile_model(args, src, "bce_metric")
    p = run([exe, "eval", "--load", make_empty_ckpt(args), "--data", data])
    check(f"bce {want:.6f}" in p.stdout, f"bce metric: expected {want:.6f}, eval printed:\n{p.stdout}")
    print(f"bce metric {want:.6f} matches")
    # accuracy on a float target: binary accuracy at probability 0.5, the prediction a logit
    binary = float(np.mean((xs > 0) == (ts > 0.5)))
    check(f"accuracy {binary:.6f}" in p.stdout, f"binary accuracy: expected {binary:.6f}, eval printed:\n{p.stdout}")
    print(f"binary accuracy {binary:.6f} matches")


def make_empty_ckpt(args):
    """A checkpoint with no tensors: models without parameters load it as their weights."""
    path = os.path.join(args.work, "empty.safetensors")
    write_safetensors(path, {})
    return path


def test_more_ops_gradcheck(args):
    """gradcheck passes for reshape, gelu (both forms), silu, softmax, log_softmax, bce, mean and sum (with fan-out),
    and fails when one of their backward rules (or tanh's, or add's) is wrong."""
    check_gradcheck(args, "more_ops.nn", ["1", "2", "3"], ["gelu", "softmax", "log_softmax"])
    check_gradcheck(args, "silu_gelu.nn", ["1", "2", "3"], ["silu", "gelu_tanh"])
    check_gradcheck(args, "reduce.nn", ["1", "2"], ["reduce", "tanh", "add"])


def test_layernorm_reference(args):
    """layernorm over the last axis (eps, weight, bias) equals NumPy; gradcheck passes on [t,k]
    and [k] inputs and catches a wrong layernorm gradient."""
    src = os.path.join(args.work, "ln.nn")
    with open(src, "w") as f:
        f.write("input x : float[2, 5]\ntarget t : float[10]\ny = x -> layernorm(eps=0.01) -> flatten\nloss mse(y, t)\n")
    exe = compile_model(args, src, "ln")
    rng = np.random.default_rng(8)
    w = rng.uniform(0.5, 1.5, 5).astype(np.float32).astype(np.float64)
    b = rng.uniform(-0.5, 0.5, 5).astype(np.float32).astype(np.float64)
    init = os.path.join(args.work, "w.safetensors")
    write_safetensors(init, {"layernorm0.weight": w, "layernorm0.bias": b})
    xs = rng.uniform(-2, 2, (3, 10)).astype(np.float32).astype(np.float64)
    got = predict_rows(exe, init, write_features_csv(os.path.join(args.work, "x.csv"), xs))
    x = xs.reshape(3, 2, 5)
    want = (x - x.mean(axis=2, keepdims=True)) / np.sqrt(x.var(axis=2, keepdims=True) + 0.01) * w + b
    err = float(np.max(np.abs(got - want.reshape(3, 10))))
    print(f"layernorm forward: max |nnc - numpy| = {err:.3g}")
    check(err < 1e-5, f"layernorm forward differs from NumPy by {err}")
    check_gradcheck(args, "layernorm.nn", ["1", "2"], ["layernorm"])


def test_batchnorm_reference(args):
    """batchnorm: one training step updates running_mean/var as PyTorch does (momentum, unbiased
    variance); predict uses the running statistics; gradcheck passes (also in a residual block)
    and catches a wrong batchnorm gradient."""
    src = os.path.join(args.work, "bn.nn")
    with open(src, "w") as f:
        f.write("input x : float[3, 2, 2]\ntarget t : float[12]\ny = x -> batchnorm(momentum=0.5, eps=0.001) -> flatten\n"
                "loss mse(y, t)\ntrain { optimizer = sgd(lr=1e-30) }\n")
    exe = compile_model(args, src, "bn")
    rng = np.random.default_rng(12)
    xs = rng.uniform(-2, 2, (4, 12)).astype(np.float32).astype(np.float64)
    ts = rng.uniform(-1, 1, (4, 12)).astype(np.float32).astype(np.float64)
    data = write_training_csv(os.path.join(args.work, "d.csv"), xs, ts)
    ckpt = os.path.join(args.work, "bn.safetensors")
    run([exe, "train", "--data", data, "--validate", "none", "--epochs", "1",
         "--batch", "4", "--no-shuffle", "--save", ckpt, "--quiet"])
    got, _ = read_safetensors(ckpt)
    per_channel = xs.reshape(4, 3, 4).transpose(1, 0, 2).reshape(3, -1)
    want_mean = 0.5 * 0 + 0.5 * per_channel.mean(axis=1)
    want_var = 0.5 * 1 + 0.5 * per_channel.var(axis=1, ddof=1)
    err = max(float(np.max(np.abs(got["batchnorm0.running_mean"] - want_mean))),
              float(np.max(np.abs(got["batchnorm0.running_var"] - want_var))))
    print(f"batchnorm running statistics: max |nnc - numpy| = {err:.3g}")
    check(err < 1e-5, f"running statistics differ from NumPy by {err}")
    predicted = predict_rows(exe, ckpt, write_features_csv(os.path.join(args.work, "x.csv"), xs))
    w, b = got["batchnorm0.weight"], got["batchnorm0.bias"]
    x = xs.reshape(4, 3, 4)
    want = ((x - want_mean[None, :, None]) / np.sqrt(want_var[None, :, None] + 0.001) * w[None, :, None] + b[None, :, None])
    err = float(np.max(np.abs(predicted - want.reshape(4, 12))))
    print(f"batchnorm inference: max |nnc - numpy| = {err:.3g}")
    check(err < 1e-5, f"inference output differs from NumPy by {err}")
    check_gradcheck(args, "batchnorm.nn", ["1", "2"], ["batchnorm"])


def test_embedding_reference(args):
    """embedding over int[t] token ids: predict returns the looked-up rows; an id outside the
    vocabulary is a clear error naming the place; gradcheck passes and catches a wrong gradient."""
    src = os.path.join(args.work, "emb.nn")
    with open(src, "w") as f:
        f.write("input tokens : int[4]\ntarget t : float[12]\ny = tokens -> embedding(5, 3) -> flatten\nloss mse(y, t)\n")
    exe = compile_model(args, src, "emb")
    rng = np.random.default_rng(2)
    w = rng.uniform(-1, 1, (5, 3)).astype(np.float32).astype(np.float64)
    init = os.path.join(args.work, "w.safetensors")
    write_safetensors(init, {"embedding0.weight": w})
    ids = np.array([[0, 4, 2, 2], [3, 1, 0, 4]])
    path = os.path.join(args.work, "ids.csv")
    with open(path, "w") as f:
        f.write("a,b,c,d\n" + "".join(",".join(str(v) for v in row) + "\n" for row in ids))
    err = float(np.max(np.abs(predict_rows(exe, init, path) - w[ids].reshape(2, 12))))
    print(f"embedding lookup: max |nnc - numpy| = {err:.3g}")
    check(err < 1e-7, f"embedding rows differ from the table by {err}")
    with open(path, "a") as f:
        f.write("1,2,5,0\n")
    p = run([exe, "predict", "--load", init, path], expect=1)
    print(p.stderr.strip())
    check("ids.csv" in p.stderr and "5" in p.stderr, f"an out-of-range id was not reported clearly:\n{p.stderr}")
    check_gradcheck(args, "embedding.nn", ["1", "2"], ["embedding"])


def np_attention(x, w_in, b_in, w_out, b_out, heads, causal):
    """torch.nn.MultiheadAttention(d, heads, batch_first=True)(x, x, x, need_weights=False)[0],
    written out: x [n, t, d]."""
    n, t, d = x.shape
    dh = d // heads
    qkv = x @ w_in.T + (b_in if b_in is not None else 0)
    q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
    out = np.zeros_like(x)
    for h in range(heads):
        cols = slice(h * dh, (h + 1) * dh)
        s = q[..., cols] @ np.swapaxes(k[..., cols], 1, 2) / np.sqrt(dh)
        if causal:
            s = np.where(np.tril(np.ones((t, t), bool)), s, -np.inf)
        p = np.exp(s - s.max(axis=2, keepdims=True))
        p /= p.sum(axis=2, keepdims=True)
        out[..., cols] = p @ v[..., cols]
    return out @ w_out.T + (b_out if b_out is not None else 0)


def test_attention_reference(args):
    """attention(heads, causal, bias) computes PyTorch's MultiheadAttention from the same weights
    (checkpoint names in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias); transpose and
    position_embedding do what they say; gradcheck passes on a model with all three (causal mask,
    odd sizes, no-bias projections) and catches a wrong rule for each new kind."""
    rng = np.random.default_rng(11)
    f32 = lambda a: a.astype(np.float32).astype(np.float64)
    # t = 29: enough rows for the packed products, whose causal scores skip the tiles above the
    # diagonal (panels of 16 keys, tiles of 6 queries, both with a partial last one)
    for t, d, heads, causal, bias in [(5, 6, 2, True, True), (5, 6, 3, False, True), (5, 6, 1, True, False), (5, 6, 6, False, False),
                                      (29, 8, 2, True, True), (29, 8, 1, False, False)]:
        n = 3
        xs = rng.uniform(-1, 1, (n, t * d)).astype(np.float32).astype(np.float64)
        xpath = write_features_csv(os.path.join(args.work, "seq.csv"), xs)
        src = os.path.join(args.work, "att.nn")
        with open(src, "w") as f:
            f.write(f"input x : float[{t}, {d}]\ntarget y : float[{t}, {d}]\n"
                    f"h = x -> attention({heads}, causal={'true' if causal else 'false'}, bias={'true' if bias else 'false'})\n"
                    "loss mse(h, y)\n")
        exe = compile_model(args, src, "att")
        w = {"attention0.in_proj_weight": f32(rng.uniform(-0.6, 0.6, (3 * d, d))),
             "attention0.out_proj.weight": f32(rng.uniform(-0.6, 0.6, (d, d)))}
        if bias:
            w["attention0.in_proj_bias"] = f32(rng.uniform(-0.3, 0.3, (3 * d,)))
            w["attention0.out_proj.bias"] = f32(rng.uniform(-0.3, 0.3, (d,)))
        ckpt = os.path.join(args.work, "att.safetensors")
        write_safetensors(ckpt, w)
        want = np_attention(xs.reshape(n, t, d), w["attention0.in_proj_weight"], w.get("attention0.in_proj_bias"),
                            w["attention0.out_proj.weight"], w.get("attention0.out_proj.bias"), heads, causal)
        err = float(np.max(np.abs(predict_rows(exe, ckpt, xpath) - want.reshape(n, t * d))))
        print(f"attention(heads={heads}, causal={causal}, bias={bias}), t={t}: max |nnc - numpy| = {err:.3g}")
        check(err < 2e-6, f"attention differs from NumPy by {err}")
    # transpose and position_embedding
    src = os.path.join(args.work, "tp.nn")
    with open(src, "w") as f:
        f.write(f"input x : float[{t}, {d}]\ntarget y : float[{d}, {t}]\nh = x -> position_embedding -> transpose\nloss mse(h, y)\n")
    exe = compile_model(args, src, "tp")
    wpe = f32(rng.uniform(-1, 1, (t, d)))
    ckpt = os.path.join(args.work, "tp.safetensors")
    write_safetensors(ckpt, {"position_embedding0.weight": wpe})
    want = np.swapaxes(xs.reshape(n, t, d) + wpe[None], 1, 2).reshape(n, t * d)
    err = float(np.max(np.abs(predict_rows(exe, ckpt, xpath) - want)))
    print(f"position_embedding -> transpose: max |nnc - numpy| = {err:.3g}")
    check(err < 1e-6, f"position_embedding/transpose differ from NumPy by {err}")
    check_gradcheck(args, "attention.nn", ["1", "2", "3"], ["attention_mix", "position_embedding", "transpose"])


def test_position_targets_reference(args):
    """class[t, V] targets: cross_entropy is the mean over positions and examples of the
    per-position loss, accuracy the fraction of positions right (NumPy from the same weights,
    targets read from t CSV columns); predict gives one distribution per position; gradcheck
    passes on a small causal language model."""
    t, v, n = 4, 5, 6
    src = os.path.join(args.work, "pos.nn")
    with open(src, "w") as f:
        f.write(f"input x : int[{t}]\ntarget y : class[{t}, {v}]\nlogits = x -> embedding({v}, {v})\n"
                "loss cross_entropy(logits, y)\nmetric accuracy(logits, y)\n")
    exe = compile_model(args, src, "pos")
    rng = np.random.default_rng(5)
    w = rng.uniform(-2, 2, (v, v)).astype(np.float32).astype(np.float64)
    ckpt = os.path.join(args.work, "pos.safetensors")
    write_safetensors(ckpt, {"embedding0.weight": w})
    xs, ys = rng.integers(0, v, (n, t)), rng.integers(0, v, (n, t))
    path = os.path.join(args.work, "pos.csv")
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(t)] + [f"y{i}" for i in range(t)]) + "\n")
        for xr, yr in zip(xs, ys):
            f.write(",".join(str(int(a)) for a in list(xr) + list(yr)) + "\n")
    logits = w[xs]                                  # [n, t, v]
    logp = logits - logits.max(axis=2, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=2, keepdims=True))
    want_loss = float(-np.mean(np.take_along_axis(logp, ys[..., None], axis=2)))
    want_acc = float(np.mean(logits.argmax(axis=2) == ys))
    spec = f'csv("{path}", target="' + ",".join(f"y{i}" for i in range(t)) + '")'
    out = run([exe, "eval", "--load", ckpt, "--data", spec]).stdout
    check(f"loss {want_loss:.6f}" in out, f"per-position cross_entropy: expected {want_loss:.6f}, eval printed:\n{out}")
    check(f"accuracy {want_acc:.6f}" in out, f"per-position accuracy: expected {want_acc:.6f}, eval printed:\n{out}")
    print(f"class[{t}, {v}]: loss {want_loss:.6f}, accuracy {want_acc:.6f} match NumPy")
    xpath = os.path.join(args.work, "posx.csv")
    with open(xpath, "w") as f:
        f.write(",".join(f"x{i}" for i in range(t)) + "\n" + "".join(",".join(str(int(a)) for a in r) + "\n" for r in xs))
    probs = np.exp(logp).reshape(n, t * v)
    got = predict_rows(exe, ckpt, xpath)[:, :t * v]
    err = float(np.max(np.abs(got - probs)))
    print(f"predict: one softmax per position, max |nnc - numpy| = {err:.2g}")
    check(err < 1e-6, f"per-position probabilities differ from NumPy by {err}")
    with open(src, "w") as f:
        f.write("input x : int[6]\ntarget y : class[6, 11]\nh = x -> embedding(11, 8) -> position_embedding\n"
                "h = h + (h -> layernorm -> attention(2, causal=true))\nlogits = h -> layernorm -> dense(11)\n"
                "loss cross_entropy(logits, y)\nmetric accuracy(logits, y)\n")
    exe = compile_model(args, src, "lm")
    for seed in ["1", "2"]:
        print("lm", run([exe, "gradcheck", "--seed", seed]).stdout.strip().split("\n")[-1])


def test_accuracy_ties(args):
    """accuracy takes the first of the greatest logits (NumPy's argmax): 60 rows of small integers
    (ties in 58 of them) through an identity dense layer, over 40 classes (two whole vectors and
    a masked tail with 16 lanes, five with 8); every other label names the last tied index."""
    rng = np.random.default_rng(5)
    x = rng.integers(-5, 5, (60, 40)).astype(np.float64)
    labels = np.array([np.flatnonzero(r == r.max())[0 if i % 2 == 0 else -1] for i, r in enumerate(x)])
    rows = os.path.join(args.work, "ties.csv")
    with open(rows, "w") as f:
        f.write(",".join(f"f{j}" for j in range(40)) + ",y\n")
        for r, label in zip(x, labels):
            f.write(",".join(str(int(v)) for v in r) + f",{label}\n")
    source = os.path.join(args.work, "argmax.nn")
    with open(source, "w") as f:
        f.write("model argmax\ninput x : float[40]\ntarget y : class[40]\nlogits = x -> dense(40, bias=false)\n"
                "loss cross_entropy(logits, y)\nmetric accuracy(logits, y)\n"
                f'train {{\n  data = csv("{rows}", target="y")\n  batch = 4\n}}\n')
    exe = compile_model(args, source, "argmax")
    weights = os.path.join(args.work, "identity.safetensors")
    write_safetensors(weights, {"dense0.weight": np.eye(40)})
    want = float(np.mean(x.argmax(axis=1) == labels))
    check(0.4 < want < 0.6, f"the rows should hit about half: {want}")
    for extra in ([], ["--vector-bytes=32"]):
        if extra:
            exe = compile_model(args, source, "argmax32", *extra)
        out = run([exe, "eval", "--load", weights, "--data", f'csv("{rows}", target="y")'])
        got = float(re.search(r"accuracy ([0-9.]+)", out.stdout).group(1))
        check(abs(got - want) < 1e-6, f"accuracy {got}, NumPy's first argmax gives {want:.6f} ({extra or 'native'})")


def test_concat_reference(args):
    """concat along axis 1 equals numpy.concatenate; gradcheck passes on concats of two and three
    tensors (negative axis, axis 0) and catches a wrong concat gradient."""
    src = os.path.join(args.work, "cat.nn")
    with open(src, "w") as f:
        f.write("input x : float[2, 3]\ntarget t : float[12]\ny = concat(x, x * 2 - 1, axis=1) -> flatten\nloss mse(y, t)\n")
    exe = compile_model(args, src, "cat")
    xs = np.random.default_rng(3).uniform(-1, 1, (2, 6)).astype(np.float32).astype(np.float64)
    got = predict_rows(exe, make_empty_ckpt(args), write_features_csv(os.path.join(args.work, "x.csv"), xs))
    x = xs.reshape(2, 2, 3)
    err = float(np.max(np.abs(got - np.concatenate([x, x * 2 - 1], axis=2).reshape(2, 12))))
    print(f"concat forward: max |nnc - numpy| = {err:.3g}")
    check(err < 1e-6, f"concat differs from NumPy by {err}")
    check_gradcheck(args, "concat.nn", ["1", "2"], ["concat"])


def test_bench_command(args):
    """`./model bench` lists every kernel of train_step in call order with the MFLOP of its
    product computed by hand (dense: 2*B*K*N; conv2d: 2*B*F*C*KH*KW*OH*OW), then the optimizer.
    With Adam the step is the fused one (train_step_update): the first layer's weight gradient
    updates its rows itself ("+update"), every other tensor has its own update row where it runs,
    and the unfused pair is timed beside it."""
    cases = {
        "fashion_mlp": [("dense dense0", 2 * 784 * 256), ("dense dense1", 2 * 256 * 128), ("dense dense2", 2 * 128 * 10),
                        ("dense_dw dense2", 2 * 128 * 10), ("dense_dx dense2", 2 * 128 * 10),
                        ("dense_dw dense1", 2 * 256 * 128), ("dense_dx dense1", 2 * 256 * 128), ("dense_dw dense0", 2 * 784 * 256)],
        "fashion_cnn": [("conv2d conv_block0.conv2d0", 2 * 32 * 9 * 784), ("conv2d conv_block1.conv2d0", 2 * 64 * 288 * 196),
                        ("conv2d_dw conv_block1.conv2d0", 2 * 64 * 288 * 196), ("conv2d_dx conv_block1.conv2d0", 2 * 64 * 288 * 196),
                        ("conv2d_dw conv_block0.conv2d0", 2 * 32 * 9 * 784)],
    }
    batch = 8
    for model, expected in cases.items():
        exe = compile_model(args, os.path.join(EXAMPLES, model + ".nn"), model)
        out = run([exe, "bench", "--batch", str(batch), "--steps", "3", "--threads", "2"]).stdout
        rows = [line for line in out.splitlines() if line and not line.startswith(("bench:", "step ", "kernel"))]
        products = [(" ".join(r.split()[:2]).removesuffix("+update"), float(r.split()[-2])) for r in rows if len(r.split()) == 6]
        for name, flops in expected:
            got = [mflop for n, mflop in products if n == name]
            check(got and abs(got[0] - flops * batch / 1e6) < 1e-3, f"{model}: {name}: expected {flops * batch / 1e6:.3f} MFLOP, rows:\n{out}")
        names = [n for n, _ in products]
        order = [names.index(name) for name, _ in expected]
        check(order == sorted(order), f"{model}: kernels not in call order:\n{out}")
        check(rows[-2].startswith("optimizer (adam) fused") and rows[-1].startswith("profiled step"), f"{model}: no optimizer/total rows:\n{out}")
        check("step (train_step + optimizer, fused; medians of the steps)" in out and "\nunfused: train_step " in out, f"{model}: no fused/unfused step lines:\n{out}")
        first_dw = expected[-1][0]  # the first layer's dW: no later kernel reads its weight
        check(any(r.startswith(first_dw + "+update ") for r in rows), f"{model}: {first_dw} does not update its rows:\n{out}")
        names = [r.split()[0] + " " + r.split()[1] for r in rows]
        updates = [n.split()[1] for n in names if n.startswith("update ")]
        params = {"fashion_mlp": 6, "fashion_cnn": 8}[model]
        check(len(updates) == params - 1, f"{model}: expected {params - 1} separate update passes, got {updates}:\n{out}")
        print(f"{model}: {len(rows) - 2} kernels profiled; products match the hand-computed MFLOP")
    # A batch whose buffers cannot even be sized: one clear error, exit 1 (it used to overflow
    # B * 784 and print an out-of-memory line per buffer). 2^53-1 is the largest --batch the
    # settings table allows; beyond it the table's range is the error.
    huge = str(2**53 - 1)
    p = run([exe, "bench", "--batch", huge, "--steps", "1"], expect=1)
    want = f"error: --batch {huge} is too large for bench (784 values per example); choose a smaller --batch\n"
    check(p.stderr == want and p.stdout == "", f"bench --batch {huge}: stderr {p.stderr!r}, stdout {p.stdout!r}")
    huger = str(2**63 - 1)
    p = run([exe, "bench", "--batch", huger, "--steps", "1"], expect=1)
    want = f"error: --batch: must be an integer of at most 9007199254740991, got '{huger}'\n"
    check(p.stderr == want and p.stdout == "", f"bench --batch {huger}: stderr {p.stderr!r}, stdout {p.stdout!r}")


def test_small_examples_train(args):
    """The shipped-data examples train as written: token_bag (embedding over token ids) and
    token_attention (a transformer encoder over them) above 0.9 validation accuracy, seattle_weather (real tabular regression, standardized features) under
    3 degrees of validation MAE. Data paths resolve beside the .nn file."""
    for model, key, good in [("token_bag", "val_accuracy", lambda v: v > 0.9), ("token_attention", "val_accuracy", lambda v: v > 0.9),
                             ("seattle_weather", "val_mae", lambda v: v < 3.0)]:
        exe = compile_model(args, os.path.join(EXAMPLES, model + ".nn"), model)
        log = os.path.join(args.work, model + ".jsonl")
        run([exe, "train", "--log", log, "--quiet"], cwd=args.work)
        last = [json.loads(line) for line in open(log)][-1]
        print(f"{model}: {key} {last[key]:.4f} after {last['epoch']} epochs")
        check(good(last[key]), f"{model}: {key} {last[key]} is not good enough")


def host_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and "avx512f" in line.split() for line in f)
    except OSError:
        return False


def test_target_cpus(args):
    """Executables built for generic x86-64, x86-64-v3 (AVX2) and x86-64-v4 (AVX-512) train to the
    same weights as the native build, up to rounding (FMA and vector width differ)."""
    ip, lp = fashion_subset(args.work, 640)
    weights = {}
    # An AVX-512 build cannot run on a host without AVX-512 (the test machines vary): there it is
    # only compiled.
    runnable = ["native", "generic", "x86-64-v3"] + (["x86-64-v4"] if host_has_avx512() else [])
    for cpu in ["native", "generic", "x86-64-v3", "x86-64-v4"]:
        exe = compile_model(args, os.path.join(EXAMPLES, "fashion_cnn.nn"), "cnn-" + cpu, f"--target-cpu={cpu}")
        if cpu not in runnable:
            print(f"{cpu}: compiled; not run (this CPU has no AVX-512)")
            continue
        ckpt = os.path.join(args.work, cpu + ".safetensors")
        run([exe, "train", "--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "1", "--save", ckpt, "--quiet"])
        weights[cpu], _ = read_safetensors(ckpt)
    for cpu in runnable[1:]:
        diff = max(float(np.max(np.abs(weights[cpu][k] - weights["native"][k]))) for k in weights["native"])
        print(f"{cpu}: max |w - w_native| after 10 steps = {diff:.3g}")
        check(diff < 1e-3, f"{cpu}: weights differ from the native build by {diff}")


def run_tests(tests):
    """The command line of the e2e scripts: `SCRIPT TEST --nnc NNC --work DIR` runs tests[TEST] in
    DIR/TEST (emptied first) and prints PASS, or FAIL and the reason; returns the exit status."""
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=sorted(tests))
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    args.work = os.path.join(args.work, args.test)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    try:
        tests[args.test](args)
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS")
    return 0


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
