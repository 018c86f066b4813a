#!/usr/bin/python3
"""End-to-end tests of the sharp edges new users met: gradcheck at kinks, predict on data with
skipped rows, the best validation loss in checkpoint metadata, and reading checkpoints from
Python without the safetensors package (runtime/python/nnc_checkpoint.py).

Usage: edge_cases.py TEST --nnc PATH --work DIR   (each TEST is one CTest test, CMakeLists.txt)
Shares e2e.py's helpers (its independent safetensors reader among them).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))
import gpt_torch  # noqa: E402  (the GPT example's torch module)
import textcsv  # noqa: E402  (csv text ids in Python, for the text examples)

from e2e import (EXAMPLES, MODELS, Failure, check, compile_model, fashion_subset, idx_spec,
                 read_safetensors, run, run_tests)

HERE = os.path.dirname(os.path.abspath(__file__))
READER_DIR = os.path.join(HERE, "..", "..", "runtime", "python")

# ---------------------------------------------------------------- gradcheck at kinks

KINK_LINE = re.compile(r"^gradcheck: (\d+) elements? sat on a kink \(e\.g\. a relu input of exactly 0\) "
                       r"and (was|were) checked 1e-4 to each side instead$", re.M)


def test_gradcheck_kinks(args):
    """Models whose relu/leaky_relu inputs are exactly 0 at the synthetic batch (the old
    gradcheck reported FAIL for them: the central difference straddles the kink) pass, with the
    kink elements counted in the output, and an injected wrong rule is still caught."""
    cases = [("kink_conv.nn", ["conv2d", "relu"]),        # conv pad=1, 1x1: border = zero bias
             ("kink_layernorm.nn", ["relu", "dense"]),     # layernorm over 1 element = its bias
             ("kink_dense.nn", ["relu", "leaky_relu", "dense"])]  # dense of x * 0 = its bias
    for model, bugs in cases:
        exe = compile_model(args, os.path.join(MODELS, model), "good")
        for seed in ["0", "1", "2", "3"]:
            out = run([exe, "gradcheck", "--seed", seed]).stdout
            check(re.search(r"^gradcheck: ok \(", out, re.M), f"{model} seed {seed}:\n{out}")
            check("FAIL" not in out, f"{model} seed {seed}:\n{out}")
            kinks = KINK_LINE.search(out)
            # seed 0 is the case the issue reported: it must really sit on a kink
            if seed == "0":
                check(kinks and int(kinks.group(1)) >= 1, f"{model}: no kink reported:\n{out}")
            tensor_kinks = sum(int(k) for k in re.findall(r"\((\d+) at a kink, checked 1e-4 to each side\)", out))
            check(tensor_kinks == (int(kinks.group(1)) if kinks else 0),
                  f"{model} seed {seed}: tensor lines and the summary count kinks differently:\n{out}")
            print(f"{model} seed {seed}: ok, {tensor_kinks} kink element(s) checked to each side")
        for op in bugs:
            bad = compile_model(args, os.path.join(MODELS, model), "bad", f"--inject-grad-bug={op}")
            p = run([bad, "gradcheck"], expect=1)
            check("FAIL" in p.stdout and "gradcheck: FAILED" in p.stdout,
                  f"{model}: a wrong {op} gradient was not caught:\n{p.stdout}")
            print(f"{model}: a wrong {op} rule is caught")


# ---------------------------------------------------------------- predict and skipped rows

def write_rows(path, header, rows):
    """rows: lists of cells (str), or None for a blank line. Returns the 1-based file line of
    each row (the header, when given, is line 1)."""
    lines, n = [], 0
    with open(path, "w") as f:
        if header:
            f.write(",".join(header) + "\n")
            n = 1
        for r in rows:
            n += 1
            f.write("\n" if r is None else ",".join(r) + "\n")
            lines.append(None if r is None else n)
    return lines


def test_predict_skipped_rows(args):
    """A bare CSV path given to predict (and eval --data) is read with the train block's csv()
    options: with missing="skip" rows with missing cells are dropped (not an error), and every
    output row then ends with the line of its input row in the file; the outputs equal a NumPy
    forward pass of the checkpoint on exactly those rows, standardized by the statistics stored
    in it. Without skipped rows the format is as before."""
    rng = np.random.default_rng(5)
    # a classifier trained on data with missing cells
    src = os.path.join(args.work, "cls.nn")
    with open(src, "w") as f:
        f.write('input x : float[3]\ntarget y : class[3]\n'
                'logits = x -> dense(4) -> tanh -> dense(3)\nloss cross_entropy(logits, y)\n'
                'train {\n  data = csv("train.csv", target="y", missing="skip")\n  epochs = 2\n  batch = 8\n}\n')
    train_rows = [[f"{v:.4f}" for v in rng.uniform(-1, 1, 3)] + [str(rng.integers(0, 3))] for _ in range(40)]
    train_rows[5][1] = "NA"
    write_rows(os.path.join(args.work, "train.csv"), ["a", "b", "c", "y"], train_rows)
    exe = compile_model(args, src, "cls")
    ckpt = os.path.join(args.work, "cls.safetensors")
    run([exe, "train", "--save", ckpt, "--quiet"], cwd=args.work)
    w, _ = read_safetensors(ckpt)
    # predict input: the target column elsewhere (ignored), missing cells, a blank line
    xs = rng.uniform(-1, 1, (9, 3)).round(4)
    rows = [[f"{x[0]}", "1", f"{x[1]}", f"{x[2]}"] for x in xs]
    rows[2][2] = ""        # an empty feature cell
    rows[5][3] = "NA"
    rows[7][1] = "?"       # a missing target cell is not a missing feature: the row is kept
    rows.insert(4, None)   # a blank line
    path = os.path.join(args.work, "new.csv")
    lines = write_rows(path, ["a", "y", "b", "c"], rows)
    good = [i for i in range(9) if i not in (2, 5)]
    want_lines = [ln for ln, r in zip(lines, rows) if r is not None and r[2] != "" and r[3] != "NA"]
    p = run([exe, "predict", "--load", ckpt, path], cwd=args.work)
    check("skipped 2 rows with missing values" in p.stderr, f"no note on the skipped rows:\n{p.stderr}")
    out = p.stdout.strip().split("\n")
    check(out[0] == "p0,p1,p2,class,line", f"header {out[0]!r}")
    got = np.array([[float(v) for v in r.split(",")] for r in out[1:]])
    check(got.shape == (7, 5), f"{got.shape[0]} output rows for 7 good input rows:\n{p.stdout}")
    check([int(v) for v in got[:, 4]] == want_lines, f"lines {got[:, 4].tolist()} != {want_lines}")
    h = np.tanh(xs[good] @ w["dense0.weight"].T + w["dense0.bias"])
    z = h @ w["dense1.weight"].T + w["dense1.bias"]
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    err = float(np.max(np.abs(got[:, :3] - probs)))
    check(err < 1e-5, f"probabilities differ from NumPy by {err}")
    check((got[:, 3] == probs.argmax(axis=1)).all(), "the class column is not the arg-max")
    print(f"predict: 7 of 9 rows, lines {want_lines}, max |p - numpy| = {err:.2g}")
    # an explicit spec is taken as written: without missing="skip" a missing cell is an error
    p = run([exe, "predict", "--load", ckpt, f'csv("{path}")'], expect=1, cwd=args.work)
    check(f"{path}:{lines[2]}:" in p.stderr and "missing value" in p.stderr, f"explicit spec:\n{p.stderr}")
    # eval --data with a bare path skips the same way (the targets of the kept rows are read)
    p = run([exe, "eval", "--load", ckpt, "--data", path], cwd=args.work)
    check(p.stdout.startswith("examples 6  loss "), f"eval --data: {p.stdout}")  # row 7's target is missing
    # no row skipped: the usual columns only
    clean = os.path.join(args.work, "clean.csv")
    write_rows(clean, ["a", "b", "c"], [[f"{v}" for v in x] for x in xs])
    out = run([exe, "predict", "--load", ckpt, clean], cwd=args.work).stdout.strip().split("\n")
    check(out[0] == "p0,p1,p2,class" and len(out) == 10, f"clean input: {out[:2]} ({len(out) - 1} rows)")

    # regression with standardized features: the statistics stored in the checkpoint are applied
    # (a train block with header=false does not train: nnc adds target="t" to it, which the
    # runtime refuses without a header)
    src = os.path.join(args.work, "reg.nn")
    with open(src, "w") as f:
        f.write('input x : float[2]\ntarget t : float[1]\ny = x -> dense(1)\nloss mse(y, t)\n'
                'train {\n  data = csv("reg.csv", missing="skip", standardize=true)\n'
                '  epochs = 3\n  batch = 4\n}\n')
    tr = [[f"{rng.uniform(0, 10):.3f}", f"{rng.uniform(-5, 5):.3f}", f"{rng.uniform(-1, 1):.3f}"] for _ in range(30)]
    tr[3][1] = "null"
    write_rows(os.path.join(args.work, "reg.csv"), ["u", "v", "t"], tr)
    exe = compile_model(args, src, "reg")
    ckpt = os.path.join(args.work, "reg.safetensors")
    run([exe, "train", "--save", ckpt, "--quiet"], cwd=args.work)
    w, _ = read_safetensors(ckpt)
    xs = np.array([[2.5, -1.0], [7.25, 3.5], [0.5, 0.0], [9.0, -4.0]])
    for with_target in [True, False]:
        rows = [[f"{v}" for v in x] + (["0.5"] if with_target else []) for x in xs]
        rows[1][1] = "N/A"
        path = os.path.join(args.work, f"reg_new_{with_target}.csv")
        lines = write_rows(path, ["u", "v"] + (["t"] if with_target else []), rows)
        out = run([exe, "predict", "--load", ckpt, path], cwd=args.work).stdout.strip().split("\n")
        check(out[0] == "y0,line", f"header {out[0]!r}")
        got = np.array([[float(v) for v in r.split(",")] for r in out[1:]])
        keep = [0, 2, 3]
        xn = (xs[keep] - w["__standardize.mean"]) / w["__standardize.std"]
        want = xn @ w["dense0.weight"].T + w["dense0.bias"]
        err = float(np.max(np.abs(got[:, :1] - want)))
        check(err < 1e-4 * max(1.0, float(np.max(np.abs(want)))), f"regression outputs differ from NumPy by {err}")
        check([int(v) for v in got[:, 1]] == [lines[i] for i in keep], f"lines {got[:, 1]}")
        print(f"standardized predict ({'with' if with_target else 'without'} the target column): "
              f"lines {[int(v) for v in got[:, 1]]}, max |y - numpy| = {err:.2g}")


# ---------------------------------------------------------------- the progress bar on a terminal

BAR_FIELDS = [("loss", re.compile(r"  loss \d")), ("left", re.compile(r"\d+:\d\d left")),
              ("bar", re.compile(r" \[[#.]+\]")), ("count", re.compile(r"  \d+/\d+")),
              ("rate", re.compile(r"\d+ samples/s"))]  # most useful first, as progress.c keeps them


def bar_draws(raw):
    """The progress lines drawn on a terminal: each is '\r' TEXT '\x1b[K'."""
    return [m for m in re.findall(r"\r([^\r\n\x1b]+)\x1b\[K", raw)]


def epoch_lines_from_screen(lines, epochs):
    """The epoch lines as one string each: a line 'epoch E/N  ...' and its indented continuations."""
    out = []
    for i, line in enumerate(lines):
        m = re.match(r"^(epoch \d+/\d+  )train_loss", line)
        if not m:
            continue
        text, j = line, i + 1
        while j < len(lines) and lines[j].startswith(" " * len(m.group(1))) and lines[j].strip():
            text += "  " + lines[j].strip()
            j += 1
        out.append(text)
    check(len(out) == epochs, f"expected {epochs} epoch lines on the screen, found {len(out)}:\n" + "\n".join(lines))
    return out


def check_epoch_lines_match_log(texts, log):
    rows = [json.loads(line) for line in open(log)]
    for text, row in zip(texts, rows):
        for key in ["train_loss", "train_accuracy", "val_loss", "val_accuracy"]:
            check(f"{key} {row[key]:.4f}" in text, f"'{key} {row[key]:.4f}' missing from the epoch line {text!r}")
        check(f"lr {row['lr']:.4g}" in text and text.endswith("samples/s"), f"epoch line {text!r}")


def test_progress_tmux(args):
    """A training run in a detached 80-column tmux pane: every redraw of the progress bar fits in
    79 columns, so the pane holds no trail of bar lines and no line longer than 80; the epoch lines
    (with validation metrics and lr, 120+ characters in one line) are broken into indented lines
    that still carry the values the log has; the banner's optimizer line is broken after commas."""
    tmux = shutil.which("tmux")
    check(tmux, "tmux is not installed (apt-get install tmux; .ci/setup installs it)")
    exe = compile_model(args, os.path.join(EXAMPLES, "fashion_mlp.nn"), "mlp")
    ip, lp = fashion_subset(args.work, 30000)
    vip, vlp = fashion_subset(args.work, 2000, which="test")
    log = os.path.join(args.work, "log.jsonl")
    sock = os.path.join(args.work, "tmux.sock")
    script = os.path.join(args.work, "run.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n"
                f"'{tmux}' -S '{sock}' wait-for go\n"  # until pipe-pane records the pane
                f"'{exe}' train --data '{idx_spec(ip, lp)}' --validate '{idx_spec(vip, vlp)}' "
                f"--epochs 2 --batch 32 --schedule cosine --threads 1 --log '{log}'\n"
                f"echo \"exit status $?\"\n"
                f"'{tmux}' -S '{sock}' wait-for -S done\n"
                "sleep 600\n")
    os.chmod(script, 0o755)
    raw_path = os.path.join(args.work, "raw.txt")
    t = [tmux, "-S", sock, "-f", "/dev/null"]
    # the server in the foreground (-D), as a child of this test: a daemon needs /dev/null to be
    # a character device, which some containers do not have
    server = subprocess.Popen(t + ["-D"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        run(t + ["new-session", "-d", "-x", "80", "-y", "50", "-s", "nnc", script])
        run(t + ["pipe-pane", "-t", "nnc", "-o", f"cat > '{raw_path}'"])
        run(t + ["wait-for", "-S", "go"])
        run(t + ["wait-for", "done"], timeout=280)
        width = run(t + ["display-message", "-p", "-t", "nnc", "#{pane_width}"]).stdout.strip()
        screen = run(t + ["capture-pane", "-p", "-J", "-t", "nnc", "-S", "-", "-E", "-"]).stdout
    finally:
        subprocess.run(t + ["kill-server"], capture_output=True)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    check(width == "80", f"the tmux pane is {width} columns wide, not 80")
    lines = [line.rstrip() for line in screen.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    print("\n".join(lines))
    check("exit status 0" in lines, "training failed in the pane")
    raw = open(raw_path, encoding="utf-8", errors="replace", newline="").read()  # keep the CRs
    draws = bar_draws(raw)
    print(f"{len(draws)} progress bar draws, the widest {max(map(len, draws), default=0)} columns")
    # 2 epochs of 30000 examples take over 0.3 s each even on a fast machine: several draws each
    check(len(draws) >= 4, f"only {len(draws)} progress bar draws: the test proves nothing")
    for d in draws:
        check(len(d) <= 79, f"a progress line of {len(d)} columns in an 80-column pane: {d!r}")
        check(d.startswith("epoch ") and " [" in d and "loss" in d and "left" in d, f"a bar without its main fields: {d!r}")
    # the cosine schedule moves the rate at every step: the bar shows the current one
    check(any("  lr 0.0" in d for d in draws), "no progress bar draw shows the current lr")
    # joined (-J) lines: a line that the terminal wrapped counts as one long line here
    long = [line for line in lines if len(line) > 80]
    check(not long, "lines longer than 80 columns:\n" + "\n".join(long))
    trail = [line for line in lines if re.search(r"\[[#.]+\]| left$", line)]
    check(not trail, "the progress bar left lines behind:\n" + "\n".join(trail))
    check_epoch_lines_match_log(epoch_lines_from_screen(lines, 2), log)
    opt = [i for i, line in enumerate(lines) if line.startswith("optimizer: adam(")]
    check(opt and lines[opt[0]].endswith(",") and lines[opt[0] + 1].startswith(" " * len("optimizer: ")),
          "the optimizer line was not broken after a comma")


def run_on_pty(cmd, cols, env=None):
    """Runs cmd with stdout and stderr on a pseudo-terminal of `cols` columns (0: one that does
    not know its size); returns everything it wrote."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    check(p.wait(timeout=240) == 0, f"{' '.join(cmd)} failed on a {cols}-column terminal:\n{b''.join(chunks).decode(errors='replace')}")
    return b"".join(chunks).decode(errors="replace")


def test_progress_widths(args):
    """On terminals from 160 down to 6 columns every progress line fits in width - 1 columns and
    drops fields least useful first (rate, count, bar, time left, loss); a terminal that does not
    know its size uses $COLUMNS, else 80; epoch and banner lines fit too."""
    exe = compile_model(args, os.path.join(EXAMPLES, "fashion_mlp.nn"), "mlp")
    ip, lp = fashion_subset(args.work, 3000)
    vip, vlp = fashion_subset(args.work, 500, which="test")
    cmd = [exe, "train", "--data", idx_spec(ip, lp), "--validate", idx_spec(vip, vlp), "--epochs", "2",
           "--batch", "64", "--schedule", "cosine"]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    cases = [(160, None), (120, None), (80, None), (50, None), (30, None), (16, None), (6, None),
             (0, "50"), (0, None)]
    for cols, columns_env in cases:
        e = dict(env, **({"COLUMNS": columns_env} if columns_env else {}))
        out = run_on_pty(cmd, cols, e)
        width = cols or int(columns_env or 80)
        draws = bar_draws(out)
        check(draws, f"{cols} columns: no progress line drawn")
        for d in draws:
            check(len(d) <= width - 1, f"{cols} columns (width {width}): a progress line of {len(d)}: {d!r}")
            shown = [name for name, rx in BAR_FIELDS if rx.search(d)]
            want = [name for name, _ in BAR_FIELDS][:len(shown)]
            check(shown == want, f"width {width}: fields {shown} shown, not the most useful first: {d!r}")
            if width >= 12:
                check(re.match(r"^epoch [12]/2", d), f"width {width}: {d!r}")
        widest = max(draws, key=len)
        # the wide terminals show everything; 80 columns drops the rate (the full line is ~90)
        if width >= 120:
            check(all(rx.search(widest) for _, rx in BAR_FIELDS), f"width {width}: {widest!r}")
        if width == 80:
            check(not BAR_FIELDS[4][1].search(widest) and BAR_FIELDS[3][1].search(widest), f"width 80: {widest!r}")
        text = re.sub(r"\r[^\r\n]*\x1b\[K", "", out).replace("\r\n", "\n")
        lines = [line for line in text.split("\n") if line]
        if width >= 50:  # narrower, single fields (a spec's item, a path) may not fit
            long = [line for line in lines if len(line) > width - 1]
            check(not long, f"width {width}: lines of more than {width - 1} columns:\n" + "\n".join(long))
        print(f"{cols:3} columns (COLUMNS={columns_env}): {len(draws)} draws, e.g. {widest!r}")


# ---------------------------------------------------------------- checkpoints in Python / PyTorch

def torch_models(torch):
    """For each example: a PyTorch module computing the same function, and the rename from nnc's
    layer names to its module paths (None where the module's attributes carry nnc's names)."""
    nn = torch.nn

    class ResBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv2d0, self.batchnorm0 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2d1, self.batchnorm1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            h = self.batchnorm1(self.conv2d1(torch.relu(self.batchnorm0(self.conv2d0(x)))))
            return torch.relu(x + h)

    class Stage(nn.Module):
        def __init__(self, cin, c):
            super().__init__()
            self.conv2d0, self.batchnorm0, self.res_block0 = nn.Conv2d(cin, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), ResBlock(c)

        def forward(self, x):
            return torch.max_pool2d(self.res_block0(torch.relu(self.batchnorm0(self.conv2d0(x)))), 2)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stage0, self.stage1, self.head = Stage(1, 16), Stage(16, 32), nn.Linear(32, 10)

        def forward(self, x):
            return self.head(self.stage1(self.stage0(x)).mean(dim=(2, 3)))

    class ResNetSweep(nn.Module):  # examples/fashion_resnet_sweep.nn as written: depth 2, relu, width 16
        def __init__(self):
            super().__init__()
            self.conv2d0, self.batchnorm0 = nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16)
            self.res0, self.res1, self.head = ResBlock(16), ResBlock(16), nn.Linear(16, 10)

        def forward(self, x):
            return self.head(self.res1(self.res0(torch.relu(self.batchnorm0(self.conv2d0(x))))).mean(dim=(2, 3)))

    class TokenBag(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding0, self.dense0, self.dense1 = nn.Embedding(64, 16), nn.Linear(16, 16), nn.Linear(16, 2)

        def forward(self, ids):
            return self.dense1(torch.relu(self.dense0(self.embedding0(ids).mean(dim=1))))

    class Positions(nn.Module):
        def __init__(self, t, d):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(t, d))

    class TokenAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding0, self.position_embedding0 = nn.Embedding(64, 16), Positions(16, 16)
            self.layernorm0, self.attention0 = nn.LayerNorm(16), nn.MultiheadAttention(16, 2, batch_first=True)
            self.layernorm1, self.dense0, self.dense1 = nn.LayerNorm(16), nn.Linear(16, 32), nn.Linear(32, 16)
            self.layernorm2, self.dense2 = nn.LayerNorm(16), nn.Linear(16, 2)

        def forward(self, ids):
            h = self.embedding0(ids) + self.position_embedding0.weight
            a = self.layernorm0(h)
            h = h + self.attention0(a, a, a, need_weights=False)[0]
            h = h + self.dense1(nn.functional.gelu(self.dense0(self.layernorm1(h))))
            return self.dense2(self.layernorm2(h).mean(dim=1))

    class TextBlock(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.layernorm0, self.attention0 = nn.LayerNorm(d), nn.MultiheadAttention(d, heads, batch_first=True)
            self.layernorm1, self.dense0, self.dense1 = nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

        def forward(self, h):
            a = self.layernorm0(h)
            h = h + self.attention0(a, a, a, need_weights=False)[0]
            return h + self.dense1(nn.functional.gelu(self.dense0(self.layernorm1(h))))

    class TextBag(nn.Module):  # examples/text_bag.nn
        def __init__(self):
            super().__init__()
            self.embedding0, self.dense0, self.dense1 = nn.Embedding(4000, 64), nn.Linear(64, 64), nn.Linear(64, 4)

        def forward(self, ids):
            return self.dense1(torch.relu(self.dense0(self.embedding0(ids).mean(dim=1))))

    class TextEncoder(nn.Module):  # examples/text_encoder.nn
        def __init__(self):
            super().__init__()
            self.embedding0, self.position_embedding0 = nn.Embedding(4000, 64), Positions(64, 64)
            self.block0, self.layernorm0, self.dense0 = TextBlock(64, 4), nn.LayerNorm(64), nn.Linear(64, 4)

        def forward(self, ids):
            h = self.block0(self.embedding0(ids) + self.position_embedding0.weight)
            return self.dense0(self.layernorm0(h).mean(dim=1))

    class TextLSTM(nn.Module):  # examples/text_lstm.nn
        def __init__(self):
            super().__init__()
            self.embedding0, self.lstm0 = nn.Embedding(4000, 64), nn.LSTM(64, 64, batch_first=True)
            self.dense0 = nn.Linear(64, 4)

        def forward(self, ids):
            return self.dense0(self.lstm0(self.embedding0(ids))[0][:, -1])

    return {
        "text_bag": (TextBag(), None),
        "text_encoder": (TextEncoder(), None),
        "text_lstm": (TextLSTM(), None),
        "fashion_mlp": (nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                      nn.Linear(128, 10)), {"dense0": "1", "dense1": "3", "dense2": "5"}),
        "fashion_mlp_wide": (nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.LayerNorm(512), nn.ReLU(), nn.Dropout(0.2),
                                           nn.Linear(512, 10)), {"dense0": "1", "layernorm0": "2", "dense1": "5"}),
        "fashion_cnn": (nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                      nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10)),
                        {"conv_block0.conv2d0": "0", "conv_block1.conv2d0": "3", "dense0": "7", "head": "9"}),
        "fashion_resnet": (ResNet(), None),
        "fashion_resnet_sweep": (ResNetSweep(), None),
        "token_bag": (TokenBag(), None),
        "seattle_weather": (nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1)),
                            {"dense0": "0", "dense1": "2", "dense2": "4"}),
        # bench/gpt_torch.py's module, loaded by its own name map (gpt_torch.load_weights)
        "text_gpt": (gpt_torch.build(torch, 4, 128, 4, 64), None),
        "token_attention": (TokenAttention(), None),
    }


def text_rows(work):
    """A CSV of 24 raw texts of 70-90 words (more than the text examples' 64), labels 0..3."""
    path = os.path.join(work, "texts.csv")
    rng = np.random.default_rng(4)
    words = "the cat sat on a mat while dogs ran far away and Science, work: politics! songs".split()
    rows = [[" ".join(rng.choice(words, rng.integers(70, 90))), k % 4] for k in range(24)]
    return textcsv.write_csv(path, ["text", "label"], rows)


def read_texts(path):
    import csv
    with open(path, newline="") as f:
        return [r["text"] for r in csv.DictReader(f)]


def read_csv_columns(path, drop):
    with open(path) as f:
        header = f.readline().strip().split(",")
        rows = [[float(v) for v in line.split(",")] for line in f if line.strip()]
    keep = [i for i, h in enumerate(header) if h != drop]
    return np.array(rows)[:, keep]


def test_checkpoint_reader(args):
    """Every example, trained for 1 epoch on a little data: runtime/python/nnc_checkpoint.py reads
    back exactly the tensors and metadata the runtime wrote (against e2e.py's own reader), leaves
    out optimizer state and standardization; and where Debian's python3 has PyTorch, the
    converted state dict loads with strict=True into an equivalent torch module whose forward
    pass equals the executable's predict. Also: the command line, and a cut file's error."""
    sys.path.insert(0, READER_DIR)
    import nnc_checkpoint as nc
    try:
        import torch
        torch.set_num_threads(1)
        models = torch_models(torch)
    except ImportError:
        torch = None
        print("note: `import torch` fails with this python3 (Debian: python3-torch); the PyTorch part is skipped")
    ip, lp = fashion_subset(args.work, 256)
    vip, vlp = fashion_subset(args.work, 64, which="test")
    fashion = ["--data", idx_spec(ip, lp), "--validate", idx_spec(vip, vlp)]
    examples = sorted(f[:-3] for f in os.listdir(EXAMPLES) if f.endswith(".nn"))
    if torch is not None:
        check(set(examples) == set(models), f"examples without a torch module here: {set(examples) - set(models)}")
    for name in examples:
        exe = compile_model(args, os.path.join(EXAMPLES, name + ".nn"), name)
        ckpt = os.path.join(args.work, name + ".safetensors")
        extra = fashion if name.startswith("fashion") else []
        if name.startswith("text_") and name != "text_gpt":  # fortunes classifiers: raw text rows
            texts = text_rows(args.work)
            extra = ["--data", f'csv("{texts}", target="label", text="text", tokenize="words", vocab=4000)',
                     "--validate", "none"]
        if name == "text_gpt": # a little text instead of the whole Bible
            text = os.path.join(args.work, "gpt_text.txt")
            with open(text, "w") as f:
                f.write("In the beginning God created the heaven and the earth. " * 40)
            extra = ["--data", f'text("{text}")', "--validate", "none"]
        run([exe, "train", "--epochs", "1", "--save", ckpt, "--quiet"] + extra)
        want, want_meta = read_safetensors(ckpt)
        got, meta = nc.read(ckpt)
        check(list(got) == list(want) and meta == want_meta, f"{name}: names or metadata differ")
        for k in want:
            check(got[k].dtype == np.float32 and got[k].shape == want[k].shape and
                  np.array_equal(got[k].astype(np.float64), want[k]), f"{name}: tensor {k} differs")
        model = nc.load(ckpt)
        check(list(model) == [k for k in want if not k.startswith(("optimizer.", "__"))], f"{name}: load() keys {list(model)}")
        check(any(k.startswith("optimizer.") for k in want), f"{name}: the checkpoint has no optimizer state to skip")
        std = nc.standardization(ckpt)
        check((std is not None) == ("__standardize.mean" in want), f"{name}: standardization()")
        line = f"{name}: {len(got)} tensors read back exactly, {len(model)} model tensors"
        if torch is not None and name == "text_gpt":
            net, _ = models[name]
            gpt_torch.load_weights(torch, net, model, 4)
            net.eval()
            ids = np.frombuffer(open(text, "rb").read()[:3 * 64], dtype=np.uint8).reshape(3, 64)
            data = os.path.join(args.work, "gpt_ids.csv")
            with open(data, "w") as f:
                f.write(",".join(f"x{i}" for i in range(64)) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in ids))
            with torch.no_grad():
                y = torch.softmax(net(torch.from_numpy(ids.astype(np.int64))).double(), dim=2).reshape(3, -1)
            out = run([exe, "predict", "--load", ckpt, data]).stdout.strip().split("\n")[1:]
            pred = np.array([[float(v) for v in r.split(",")][:y.shape[1]] for r in out])
            err = float(np.max(np.abs(pred - y.numpy())))
            check(pred.shape == tuple(y.shape) and err < 1e-4, f"{name}: torch forward differs from predict by {err}")
            line += f"; torch load_state_dict(strict=True) ok, forward = predict within {err:.1g} on {len(pred)} examples"
        elif torch is not None:
            net, rename = models[name]
            net.load_state_dict(nc.torch_state_dict(ckpt, rename=rename), strict=True)
            net.eval()
            if name.startswith("fashion"):
                x = torch.from_numpy(load_idx_images(vip))
                data = vip
            elif name.startswith("text_"):
                # every text has more than 64 words: no padding, so torch needs no lengths
                data = texts
                vocab = meta["vocab"].split("\n")
                x = torch.tensor([textcsv.word_ids(t, vocab, 64) for t in read_texts(texts)])
            elif name in ("token_bag", "token_attention"):
                data = os.path.join(EXAMPLES, "data", "tokens_val.csv")
                x = torch.from_numpy(read_csv_columns(data, "label").astype(np.int64))
            else:
                data = os.path.join(EXAMPLES, "data", "seattle_weather.csv")
                feats = read_csv_columns(data, "temp_max").astype(np.float32)
                x = torch.from_numpy((feats - std[0]) / std[1])
            with torch.no_grad():
                y = net(x).double()
            if y.shape[1] > 1:
                y = torch.softmax(y, dim=1)
            out = run([exe, "predict", "--load", ckpt, data]).stdout.strip().split("\n")[1:]
            pred = np.array([[float(v) for v in r.split(",")][:y.shape[1]] for r in out])
            err = float(np.max(np.abs(pred - y.numpy())))
            check(pred.shape == tuple(y.shape) and err < 1e-4, f"{name}: torch forward differs from predict by {err}")
            line += f"; torch load_state_dict(strict=True) ok, forward = predict within {err:.1g} on {len(pred)} examples"
        print(line)
    # the command line: a listing, and a cut file is one error line naming the file, exit 1
    ckpt = os.path.join(args.work, "fashion_mlp.safetensors")
    tool = os.path.join(READER_DIR, "nnc_checkpoint.py")
    p = run(["/usr/bin/python3", tool, ckpt])
    check(re.search(r"^dense0\.weight +\[256, 784\] +float32$", p.stdout, re.M) and "meta format = nnc-1" in p.stdout, p.stdout)
    cut = os.path.join(args.work, "cut.safetensors")
    with open(ckpt, "rb") as f, open(cut, "wb") as g:
        g.write(f.read()[:5000])
    p = run(["/usr/bin/python3", tool, cut], expect=1)
    check(p.stderr.startswith(f"error: {cut}: tensor '") and "do not hold" in p.stderr and p.stderr.count("\n") == 1,
          f"cut file: {p.stderr!r}")
    if torch is not None:
        pt = os.path.join(args.work, "mlp.pt")
        run(["/usr/bin/python3", tool, ckpt, "--torch", pt, "--rename", "dense0=1", "--rename", "dense1=3", "--rename", "dense2=5"])
        net = torch_models(torch)["fashion_mlp"][0]
        net.load_state_dict(torch.load(pt), strict=True)
        check(torch.equal(net[1].weight, torch.from_numpy(np.array(nc.load(ckpt)["dense0.weight"]))), "--torch wrote other weights")
        print("nnc_checkpoint.py --torch: the saved state dict loads with strict=True")


def load_idx_images(path):
    """IDX images scaled like the examples' idx(..., scale=1/255), as float32 [n, 1, 28, 28]."""
    from e2e import load_idx
    x = load_idx(path).astype(np.float32) * np.float32(1 / 255)
    return x.reshape(-1, 1, 28, 28)


# ---------------------------------------------------------------- --save before training

def test_save_path(args):
    """train without --save says once, before training, that the weights will not be kept (not
    with --quiet); an unwritable --save (a missing directory, a directory) is an error before the
    first epoch, exit 1, nothing written."""
    src = os.path.join(args.work, "save_path.nn")
    with open(src, "w") as f:
        f.write('input x : float[3]\ntarget y : float[1]\np = x -> dense(1)\nloss mse(p, y)\n'
                'train {\n  data = csv("save_path.csv", target="y")\n  epochs = 2\n  batch = 4\n}\n')
    with open(os.path.join(args.work, "save_path.csv"), "w") as f:
        f.write("a,b,c,y\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(16)))
    exe = compile_model(args, src, "save_path")
    note = "note: weights will not be saved; add --save FILE"
    p = run([exe, "train"], cwd=args.work)
    check(p.stderr.splitlines() == [note], f"train without --save:\n{p.stderr}")
    p = run([exe, "train", "--quiet"], cwd=args.work)
    check(note not in p.stderr, f"--quiet still printed the note:\n{p.stderr}")
    p = run([exe, "train", "--save", "save_path.st"], cwd=args.work)
    check(note not in p.stderr and os.path.exists(os.path.join(args.work, "save_path.st")), f"--save:\n{p.stderr}")
    before = sorted(os.listdir(args.work))
    for path, message in [
        ("no/such/dir/w.st", "error: --save 'no/such/dir/w.st': cannot create a file in 'no/such/dir' "
                             "(No such file or directory); choose a writable path"),
        ("nodir.st/", "error: --save 'nodir.st/': cannot create a file in 'nodir.st' (No such file or directory); "
                      "choose a writable path"),
        (args.work, f"error: --save '{args.work}' is a directory; give a file name, e.g. --save {args.work}/model.safetensors"),
    ]:
        p = run([exe, "train", "--save", path], expect=1, cwd=args.work)
        check(p.stderr.strip() == message, f"--save {path}:\n  got  {p.stderr.strip()!r}\n  want {message!r}")
        check("epoch" not in p.stdout, f"--save {path} trained first:\n{p.stdout}")
        check(sorted(os.listdir(args.work)) == before, f"--save {path} left files: {os.listdir(args.work)}")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
