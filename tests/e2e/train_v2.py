#!/usr/bin/python3
"""End-to-end tests of the v2 training settings (e2e.py's style and helpers): per-step schedules
in real training against a NumPy reference, string class labels through train, predict and eval
--confusion, --save-best.

Usage: train_v2.py TEST --nnc PATH --work DIR      (each TEST is one CTest test, see CMakeLists.txt)
"""
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import (Failure, check, compare, compile_model, mlp_grads, read_safetensors, run,  # noqa: E402
                 run_tests, write_safetensors)


def cosine_rate(lr, warmup, s, steps, epochs):
    """The documented cosine(warmup) rate of step s (grammar/REFERENCE.md, Schedules)."""
    t = s / steps
    if t < warmup:
        return lr * min(1.0, (s + 1) / (warmup * steps))
    return lr * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (epochs - warmup)))


def onecycle_rate(max_lr, pct, s, total, div=25.0, final=1e4):
    """PyTorch OneCycleLR(anneal_strategy='cos', three_phase=False).get_lr, written out."""
    initial, low = max_lr / div, max_lr / div / final
    anneal = lambda a, b, p: b + (a - b) / 2 * (math.cos(math.pi * p) + 1)
    end1 = pct * total - 1
    if s <= end1:
        return anneal(initial, max_lr, s / end1 if end1 else 1.0)
    return anneal(max_lr, low, (s - end1) / (total - 1 - end1))


def make_classes(rng, n, k):
    x = rng.uniform(-1, 1, (n, k)).astype(np.float32).astype(np.float64)
    y = (np.argmax(x[:, :3] + 0.3 * x[:, 3:4], axis=1)).astype(int)
    return x, y


def write_csv(path, x, labels):
    with open(path, "w") as f:
        f.write(",".join(f"f{i}" for i in range(x.shape[1])) + ",label\n")
        for row, lab in zip(x, labels):
            f.write(",".join(repr(float(v)) for v in row) + f",{lab}\n")
    return path


def test_schedule_training(args):
    """Training with per-step cosine(warmup=0.5) and onecycle: the weights after 3 epochs equal a
    NumPy SGD whose rate changes every step by the documented formulas, and the log's lr is the
    rate of each epoch's last step."""
    rng = np.random.default_rng(5)
    x, y = make_classes(rng, 44, 5)  # 44 examples, batch 8: 6 steps per epoch, the last of 4
    data = write_csv(os.path.join(args.work, "d.csv"), x, y)
    src = os.path.join(args.work, "sched.nn")
    with open(src, "w") as f:
        f.write("model sched\ninput x : float[5]\ntarget label : class[3]\n"
                "logits = x -> dense(3)\nloss cross_entropy(logits, label)\n"
                f'train {{\n  data = csv("{data}")\n  optimizer = sgd(0.5)\n  batch = 8\n  epochs = 3\n}}\n')
    exe = compile_model(args, src, "sched")
    init = {"dense0.weight": rng.uniform(-0.5, 0.5, (3, 5)).astype(np.float32).astype(np.float64),
            "dense0.bias": rng.uniform(-0.1, 0.1, 3).astype(np.float32).astype(np.float64)}
    write_safetensors(os.path.join(args.work, "init.st"), init)
    steps, epochs = 6, 3
    for spec, rate in [("cosine(warmup=0.5)", lambda s: cosine_rate(0.5, 0.5, s, steps, epochs)),
                       ("onecycle(0.8, pct=0.25)", lambda s: onecycle_rate(0.8, 0.25, s, steps * epochs))]:
        out, log = os.path.join(args.work, "out.st"), os.path.join(args.work, "log.jsonl")
        if os.path.exists(log):
            os.remove(log)
        run([exe, "train", "--load", os.path.join(args.work, "init.st"), "--schedule", spec,
             "--no-shuffle", "--save", out, "--log", log, "--quiet"])
        params = {k: v.copy() for k, v in init.items()}
        layers = [("dense0", None)]
        s = 0
        for e in range(epochs):
            for start in range(0, len(x), 8):
                g = mlp_grads(params, layers, x[start:start + 8], y[start:start + 8], "cross_entropy")
                lr = rate(s)
                for k in params:
                    params[k] = params[k] - lr * g[k]
                s += 1
        got, _ = read_safetensors(out)
        compare(got, params, 2e-5, f"{spec}: 3 epochs of per-step rates")
        logged = [json.loads(line)["lr"] for line in open(log)]
        want = [rate((e + 1) * steps - 1) for e in range(epochs)]
        worst = max(abs(a - b) for a, b in zip(logged, want))
        print(f"{spec}: log lr {logged}, reference {want}")
        check(len(logged) == epochs and worst <= 1e-12, f"{spec}: the log's lr {logged} is not {want}")


def string_label_model(args):
    """A model trained on a CSV whose labels are names; returns (exe, ckpt, x, names)."""
    rng = np.random.default_rng(11)
    x, y = make_classes(rng, 120, 5)
    y[::6] = (y[::6] + 1) % 3  # wrong labels a linear model cannot fit: the matrix has errors
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    train = write_csv(os.path.join(args.work, "train.csv"), x, names)
    src = os.path.join(args.work, "iris.nn")
    with open(src, "w") as f:
        f.write("model iris\ninput x : float[5]\ntarget label : class[3]\n"
                "logits = x -> dense(3)\nloss cross_entropy(logits, label)\n"
                "metric accuracy(logits, label)\n"
                f'train {{\n  data = csv("{train}")\n  optimizer = adam(0.02)\n  batch = 16\n  epochs = 25\n}}\n')
    exe = compile_model(args, src, "iris")
    ckpt = os.path.join(args.work, "iris.st")
    run([exe, "train", "--save", ckpt, "--quiet"])
    return exe, ckpt, x, names, train


def test_string_labels_predict(args):
    """String labels round-trip: the checkpoint stores the sorted names, predict prints them (the
    arg-max column's), they are the training file's own labels for nearly every row, and eval's
    accuracy is predict's agreement with the file; eval --confusion's matrix is the one counted
    from predict's names."""
    exe, ckpt, x, names, train = string_label_model(args)
    _, meta = read_safetensors(ckpt)
    check(json.loads(meta.get("labels", "null")) == ["setosa", "versicolor", "virginica"],
          f"labels metadata {meta.get('labels')}")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "runtime", "python"))
    import nnc_checkpoint
    check(nnc_checkpoint.labels(ckpt) == ["setosa", "versicolor", "virginica"], "nnc_checkpoint.labels")
    rows = run([exe, "predict", "--load", ckpt, train]).stdout.strip().split("\n")
    check(rows[0] == "p_setosa,p_versicolor,p_virginica,class", f"header {rows[0]}")
    got = []
    for r in rows[1:]:
        cells = r.split(",")
        p = [float(v) for v in cells[:3]]
        check(cells[3] == ["setosa", "versicolor", "virginica"][p.index(max(p))], f"row {r}")
        got.append(cells[3])
    right = sum(a == b for a, b in zip(got, names))
    ev = run([exe, "eval", "--load", ckpt, "--data", train, "--confusion"]).stdout
    acc = float(ev.split("accuracy ")[1].split()[0])
    print(f"predict agrees with the labels on {right} of {len(names)} rows; eval accuracy {acc}")
    check(0.7 * len(names) <= right < len(names), f"{right} of {len(names)} right (the noise is 1 in 6)")
    check(abs(acc - right / len(names)) < 1e-6, f"eval accuracy {acc} != predict's {right / len(names)}")
    order = ["setosa", "versicolor", "virginica"]
    lines = ev.split("\n")
    at = next(i for i, l in enumerate(lines) if l.startswith("confusion matrix"))
    check(lines[at + 1].split() == order, f"matrix header {lines[at + 1]}")
    for i, t in enumerate(order):
        cells = lines[at + 2 + i].split()
        want = [sum(1 for a, b in zip(names, got) if a == t and b == p) for p in order]
        check(cells[0] == t and [int(c) for c in cells[1:]] == want, f"row {t}: {cells}, want {want}")
    print("\n".join(lines[at:at + 5]))


def test_save_best_nnc(args):
    """--save-best with a compiled model: the kept file's epoch is the log's best val_loss, and
    eval of it on the validation set prints that loss."""
    rng = np.random.default_rng(3)
    x, y = make_classes(rng, 200, 5)
    y[::5] = rng.integers(0, 3, 40)  # noisy labels: validation loss turns up after a while
    train = write_csv(os.path.join(args.work, "train.csv"), x[:150], y[:150])
    valid = write_csv(os.path.join(args.work, "valid.csv"), x[150:], y[150:])
    src = os.path.join(args.work, "m.nn")
    with open(src, "w") as f:
        f.write("model m\ninput x : float[5]\ntarget label : class[3]\n"
                "logits = x -> dense(64) -> relu -> dense(64) -> relu -> dense(3)\n"
                "loss cross_entropy(logits, label)\n"
                f'train {{\n  data = csv("{train}")\n  validate = csv("{valid}")\n'
                "  optimizer = adam(0.02)\n  batch = 10\n  epochs = 15\n}\n")
    exe = compile_model(args, src, "m")
    best, log = os.path.join(args.work, "best.st"), os.path.join(args.work, "log.jsonl")
    run([exe, "train", "--save-best", best, "--log", log, "--quiet"])
    rows = [json.loads(line) for line in open(log)]
    b = min(rows, key=lambda r: r["val_loss"])
    _, meta = read_safetensors(best)
    print(f"best val_loss {b['val_loss']:.6f} at epoch {b['epoch']} of {len(rows)}; best.st epoch {meta['epoch']}")
    check(int(meta["epoch"]) == b["epoch"], f"best.st holds epoch {meta['epoch']}, the log's best is {b['epoch']}")
    ev = run([exe, "eval", "--load", best]).stdout
    loss = float(ev.split("loss ")[1].split()[0])
    check(abs(loss - b["val_loss"]) < 1e-6, f"eval of best.st: {loss}, the log's val_loss {b['val_loss']}")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
