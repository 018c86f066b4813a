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


PADDED_MODEL = """input  tokens : int[{t}]
target label  : class[2]
e    = tokens -> embedding(20, 6)
last = e -> lstm(5, return="last")
g    = e -> gru(4, return="last")
avg  = e -> mean(axis=0)
att  = e -> attention(2, causal=true) -> attention(3) -> mean(axis=0)
logits = concat(last, g, avg, att) -> dense(2)
loss   cross_entropy(logits, label)
train {{
  data = csv("reviews.csv", target="label"{text})
}}
"""


def write_ids(path, rows, t):
    with open(path, "w") as f:
        f.write(",".join(f"t{i}" for i in range(t)) + ",label\n")
        for ids, label in rows:
            f.write(",".join(map(str, ids + [0] * (t - len(ids)))) + f",{label}\n")


def predict_csv(exe, ckpt, data):
    lines = run([exe, "predict", "--load", ckpt, f'csv("{data}", target="label")']).stdout.strip().split("\n")
    return np.array([[float(v) for v in r.split(",")] for r in lines if r and not r[0].isalpha()])


def test_padding_lengths(args):
    """With a csv text column as the data, id 0 is padding: the same token ids padded to 8 and to
    12 positions give the same predictions (to float32 rounding) through lstm/gru return="last",
    mean(axis=0) and causal and bidirectional attention, from the same weights; the same models
    over a csv of plain id columns (no padding semantics) do not. An example with no token at all
    is among them."""
    rng = np.random.default_rng(3)
    rows = [([], 0)] + [([int(v) for v in rng.integers(1, 20, int(rng.integers(1, 9)))], int(rng.integers(0, 2))) for _ in range(30)]
    data = {t: os.path.join(args.work, f"ids{t}.csv") for t in (8, 12)}
    for t, path in data.items():
        write_ids(path, rows, t)
    outputs = {}
    for padded in (True, False):
        text = ', text="review", length=8, tokenize="words", vocab=20' if padded else ""
        exes = {}
        for t in (8, 12):
            source = os.path.join(args.work, f"pad{t}_{padded}.nn")
            with open(source, "w") as f:
                f.write(PADDED_MODEL.format(t=t, text=text.replace("length=8", f"length={t}")))
            exes[t] = compile_model(args, source, f"pad{t}_{padded}")
        ckpt = os.path.join(args.work, f"pad_{padded}.safetensors")
        run([exes[8], "train", "--data", f'csv("{data[8]}", target="label")', "--validate", "none", "--epochs", "3",
             "--save", ckpt, "--quiet"])
        outputs[padded] = {t: predict_csv(exes[t], ckpt, data[t]) for t in (8, 12)}
    same = float(np.max(np.abs(outputs[True][8] - outputs[True][12])))
    differ = float(np.max(np.abs(outputs[False][8] - outputs[False][12])))
    print(f"padded text: max |p(length 8) - p(length 12)| = {same:.1e}; plain id columns: {differ:.1e}")
    check(outputs[True][8].shape == (len(rows), 3), f"predict printed {outputs[True][8].shape} values")
    check(same < 1e-6, f"the same text padded to 8 and 12 positions gives different outputs ({same:.3g})")
    check(differ > 1e-3, f"without padding semantics the lengths agree too ({differ:.3g}): the test would prove nothing")


MEAN_MODEL = """input  tokens : int[6]
target y      : float[4]
y_hat = tokens -> embedding(10, 4) -> mean(axis=0)
loss  mse(y_hat, y)
train {
  data = csv("reviews.csv", target="label", text="review", length=6, tokenize="words", vocab=10)
}
"""


def test_padding_mean(args):
    """mean(axis=0) over padded text averages the embeddings of the real tokens only (NumPy from
    the checkpoint's table); an example with no real token gives 0."""
    source = os.path.join(args.work, "mean.nn")
    with open(source, "w") as f:
        f.write(MEAN_MODEL)
    exe = compile_model(args, source, "mean")
    rng = np.random.default_rng(8)
    table = rng.uniform(-1, 1, (10, 4)).astype(np.float32).astype(np.float64)
    ckpt = os.path.join(args.work, "mean.safetensors")
    write_safetensors(ckpt, {"embedding0.weight": table})
    rows = [[3, 1, 4, 1, 5], [9], [], [2, 6, 5, 3, 5, 8], [0, 7, 0, 2]]  # ids 0 inside are padding too
    path = os.path.join(args.work, "mean.csv")
    with open(path, "w") as f:
        f.write("t0,t1,t2,t3,t4,t5\n")
        for ids in rows:
            f.write(",".join(map(str, ids + [0] * (6 - len(ids)))) + "\n")
    lines = run([exe, "predict", "--load", ckpt, f'csv("{path}")']).stdout.strip().split("\n")
    got = np.array([[float(v) for v in r.split(",")] for r in lines if r and not r[0].isalpha()])
    want = np.array([table[[i for i in ids if i != 0]].mean(0) if any(ids) else np.zeros(4) for ids in rows])
    err = float(np.max(np.abs(got - want)))
    print(f"masked mean: max |nnc - numpy| = {err:.1e}")
    check(got.shape == want.shape and err < 1e-6, f"the mean over real tokens differs from NumPy by {err:.3g}\n{got}\n{want}")


def test_padding_gradcheck(args):
    """gradcheck passes on padded text with a third of the ids padding (a vocabulary of 3): the masked
    mean, causal attention whose first row has no real key next to rows that have some, examples
    with no real token, and return="last" after the last real token; wrong rules are caught."""
    model = os.path.join(MODELS, "padding.nn")
    exe = compile_model(args, model, "padding")
    for seed in ("1", "2", "3", "4"):
        line = gradcheck_line(exe, seed)
        print("padding", line)
        check(line.startswith("gradcheck: ok (19 tensors"), f"seed {seed}: {line}")
    for op in ("attention_mix", "reduce", "rnn_output", "lstm", "gru"):
        exe = compile_model(args, model, "bad", f"--inject-grad-bug={op}")
        p = run([exe, "gradcheck"], expect=1)
        check("FAIL" in p.stdout + p.stderr, f"padding.nn: gradcheck with a wrong {op} gradient did not report FAIL")


def test_padding_raw_text(args):
    """The same raw texts (csv text column, words) read at length 8 and at length 12 give the
    same predictions from the same checkpoint (its vocabulary included) through the padding-aware
    ops: the extra positions are padding that no op sees."""
    words = ["good", "bad", "fine", "awful", "great", "poor", "movie", "plot", "acting", "music", "long", "short"]
    rng = np.random.default_rng(11)
    texts = [" ".join(rng.choice(words, int(rng.integers(1, 9)))) for _ in range(40)]
    labels = [int(sum(w in ("good", "fine", "great") for w in t.split()) >= sum(w in ("bad", "awful", "poor") for w in t.split()))
              for t in texts]
    path = os.path.join(args.work, "reviews.csv")
    with open(path, "w") as f:
        f.write("review,label\n" + "".join(f"{t},{l}\n" for t, l in zip(texts, labels)))
    exes = {}
    for t in (8, 12):
        source = os.path.join(args.work, f"text{t}.nn")
        with open(source, "w") as f:
            f.write(PADDED_MODEL.format(t=t, text=f', text="review", length={t}, tokenize="words", vocab=20')
                    .replace('"reviews.csv"', f'"{path}"'))
        exes[t] = compile_model(args, source, f"text{t}")
    ckpt = os.path.join(args.work, "text.safetensors")
    run([exes[8], "train", "--validate", "none", "--epochs", "3", "--save", ckpt, "--quiet"])
    got = {}
    for t in (8, 12):
        lines = run([exes[t], "predict", "--load", ckpt, path]).stdout.strip().split("\n")
        got[t] = np.array([[float(v) for v in r.split(",")] for r in lines if r and not r[0].isalpha()])
    diff = float(np.max(np.abs(got[8] - got[12])))
    print(f"raw text at length 8 and 12: max |difference| = {diff:.1e} over {len(texts)} texts")
    check(got[8].shape == (len(texts), 3), f"predict printed {got[8].shape} values")
    check(diff < 1e-6, f"the same texts at length 8 and 12 give different outputs ({diff:.3g})")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
