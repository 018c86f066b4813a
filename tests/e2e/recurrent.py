#!/usr/bin/python3
"""End-to-end tests of lstm and gru: gradcheck through time (t = 1, 2, 37; return="sequence" and
"last"; an injected wrong rule caught for each recurrent kind), the forward pass against a NumPy
implementation of PyTorch's equations, PyTorch's initialization bounds, and padding (the state
after the last real token, whatever the padded length).

Usage: recurrent.py TEST --nnc PATH --work DIR   (each TEST is one CTest test, CMakeLists.txt)
Shares e2e.py's helpers.
"""
import os
import sys

import numpy as np

from e2e import MODELS, check, compile_model, read_safetensors, run, run_tests, write_safetensors


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def lstm_ref(x, w, p, last):
    """torch.nn.LSTM(batch_first=True) on x [n, t, d]: gates i, f, g, o."""
    n, t, _ = x.shape
    hid = w[p + "weight_hh_l0"].shape[1]
    h, c, out = np.zeros((n, hid)), np.zeros((n, hid)), []
    for s in range(t):
        a = x[:, s] @ w[p + "weight_ih_l0"].T + w[p + "bias_ih_l0"] + h @ w[p + "weight_hh_l0"].T + w[p + "bias_hh_l0"]
        i, f, g, o = sigmoid(a[:, :hid]), sigmoid(a[:, hid:2 * hid]), np.tanh(a[:, 2 * hid:3 * hid]), sigmoid(a[:, 3 * hid:])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return out[-1] if last else np.stack(out, 1)


def gru_ref(x, w, p, last):
    """torch.nn.GRU(batch_first=True): gates r, z, n; n = tanh(W_in x + b_in + r (W_hn h + b_hn))."""
    n, t, _ = x.shape
    hid = w[p + "weight_hh_l0"].shape[1]
    h, out = np.zeros((n, hid)), []
    for s in range(t):
        gi = x[:, s] @ w[p + "weight_ih_l0"].T + w[p + "bias_ih_l0"]
        gh = h @ w[p + "weight_hh_l0"].T + w[p + "bias_hh_l0"]
        r, z = sigmoid(gi[:, :hid] + gh[:, :hid]), sigmoid(gi[:, hid:2 * hid] + gh[:, hid:2 * hid])
        nn_ = np.tanh(gi[:, 2 * hid:] + r * gh[:, 2 * hid:])
        h = (1 - z) * nn_ + z * h
        out.append(h)
    return out[-1] if last else np.stack(out, 1)


def gradcheck_line(exe, seed):
    p = run([exe, "gradcheck", "--seed", seed])
    return p.stdout.strip().split("\n")[-1]


def test_recurrent_gradcheck(args):
    """gradcheck passes through an lstm (sequence), a gru (last) and a gru (sequence) into mean
    at t = 1, 2 and 37, and on a float input straight into the layers; a wrong backward rule of
    lstm, gru or their output node is caught (FAIL, exit 1)."""
    model = os.path.join(MODELS, "recurrent.nn")
    for t in ("1", "2", "37"):
        exe = compile_model(args, model, f"recurrent_t{t}", "-D", f"t={t}")
        for seed in ("1", "2"):
            line = gradcheck_line(exe, seed)
            print(f"t={t}", line)
            check(line.startswith("gradcheck: ok (15 tensors"), f"t={t} seed {seed}: {line}")
    exe = compile_model(args, os.path.join(MODELS, "recurrent_float.nn"), "recurrent_float")
    for seed in ("1", "2", "3"):
        line = gradcheck_line(exe, seed)
        print("float input", line)
        check(line.startswith("gradcheck: ok (14 tensors"), f"float input, seed {seed}: {line}")
    for model_file in ("recurrent.nn", "recurrent_float.nn"):
        for op in ("lstm", "gru", "rnn_output"):
            exe = compile_model(args, os.path.join(MODELS, model_file), "bad", f"--inject-grad-bug={op}", "-D", "t=3")
            p = run([exe, "gradcheck"], expect=1)
            check("FAIL" in p.stdout + p.stderr, f"{model_file}: gradcheck with a wrong {op} gradient did not report FAIL")


FORWARD_MODEL = """input  x : float[{t}, 3]
target y : float[{out}]
y_hat = x -> {op}(4, return="{ret}"){flat}
loss mse(y_hat, y)
"""


def test_recurrent_forward_reference(args):
    """predict of x -> lstm / gru (return="sequence" and "last", t = 1 and 6) equals NumPy's
    implementation of PyTorch's equations from the same weights, within float32 rounding."""
    rng = np.random.default_rng(5)
    for op, ref, gates in (("lstm", lstm_ref, 4), ("gru", gru_ref, 3)):
        for t in (1, 6):
            for ret in ("sequence", "last"):
                out = 4 * t if ret == "sequence" else 4
                source = os.path.join(args.work, f"{op}_{t}_{ret}.nn")
                with open(source, "w") as f:
                    f.write(FORWARD_MODEL.format(t=t, op=op, ret=ret, out=out, flat=" -> flatten" if ret == "sequence" else ""))
                exe = compile_model(args, source, f"{op}_{t}_{ret}")
                p = op + "0."
                w = {p + "weight_ih_l0": rng.uniform(-0.7, 0.7, (gates * 4, 3)), p + "weight_hh_l0": rng.uniform(-0.7, 0.7, (gates * 4, 4)),
                     p + "bias_ih_l0": rng.uniform(-0.5, 0.5, gates * 4), p + "bias_hh_l0": rng.uniform(-0.5, 0.5, gates * 4)}
                w = {k: v.astype(np.float32).astype(np.float64) for k, v in w.items()}
                ckpt = os.path.join(args.work, f"{op}_{t}_{ret}.safetensors")
                write_safetensors(ckpt, w)
                x = rng.uniform(-2, 2, (5, t, 3)).astype(np.float32).astype(np.float64)
                data = os.path.join(args.work, f"{op}_{t}_{ret}.csv")
                with open(data, "w") as f:
                    f.write(",".join(f"x{i}" for i in range(3 * t)) + "\n")
                    for row in x.reshape(5, -1):
                        f.write(",".join(repr(float(v)) for v in row) + "\n")
                lines = run([exe, "predict", "--load", ckpt, data]).stdout.strip().split("\n")
                got = np.array([[float(v) for v in r.split(",")] for r in lines if r and not r[0].isalpha()])
                want = ref(x, w, p, ret == "last").reshape(5, -1)
                err = float(np.max(np.abs(got - want)))
                print(f"{op} t={t} return={ret}: max |nnc - numpy| = {err:.1e}")
                check(got.shape == want.shape and err < 2e-6, f"{op} t={t} return={ret}: differs from NumPy by {err:.3g}")


INIT_MODEL = """input  tokens : int[4]
target label  : class[2]
h = tokens -> embedding(10, 8) -> {op}(64, return="last")
logits = h -> dense(2)
loss cross_entropy(logits, label)
"""


def test_recurrent_init(args):
    """Every lstm/gru tensor starts as PyTorch's: uniform in [-1/sqrt(h), 1/sqrt(h)] (the range
    filled, the mean near 0), with PyTorch's names and shapes in the checkpoint."""
    data = os.path.join(args.work, "tokens.csv")
    with open(data, "w") as f:
        f.write("t0,t1,t2,t3,label\n" + "".join(f"{i % 10},{(i * 3) % 10},1,2,{i % 2}\n" for i in range(8)))
    for op, gates in (("lstm", 4), ("gru", 3)):
        source = os.path.join(args.work, f"{op}_init.nn")
        with open(source, "w") as f:
            f.write(INIT_MODEL.format(op=op))
        exe = compile_model(args, source, f"{op}_init")
        ckpt = os.path.join(args.work, f"{op}_init.safetensors")
        # one step of a tiny learning rate: the weights are the initial ones to well within the check
        run([exe, "train", "--data", f'csv("{data}", target="label")', "--validate", "none", "--epochs", "1", "--batch", "8",
             "--optimizer", "sgd(lr=1e-9)", "--save", ckpt, "--quiet"])
        w, _ = read_safetensors(ckpt)
        bound = 1 / np.sqrt(64)
        shapes = {"weight_ih_l0": (gates * 64, 8), "weight_hh_l0": (gates * 64, 64), "bias_ih_l0": (gates * 64,),
                  "bias_hh_l0": (gates * 64,)}
        for name, shape in shapes.items():
            t = w[f"{op}0.{name}"]
            check(t.size == int(np.prod(shape)), f"{op}0.{name}: {t.size} elements, want shape {shape}")
            lo, hi, mean = float(t.min()), float(t.max()), float(t.mean())
            print(f"{op}0.{name}: {t.size} values in [{lo:.4f}, {hi:.4f}], mean {mean:+.4f} (bound {bound:.4f})")
            check(-bound - 1e-6 <= lo and hi <= bound + 1e-6, f"{op}0.{name} leaves U(-1/sqrt(h), 1/sqrt(h)): [{lo}, {hi}]")
            check(hi > 0.9 * bound and lo < -0.9 * bound, f"{op}0.{name} does not fill the range: [{lo}, {hi}]")
            check(abs(mean) < 0.2 * bound, f"{op}0.{name}: mean {mean} is not near 0")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
