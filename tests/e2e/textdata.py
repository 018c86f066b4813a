#!/usr/bin/python3
"""End-to-end tests of split(), text() data and `./model generate` (e2e.py's style and helpers).

Usage: textdata.py TEST --nnc PATH --work DIR      (each TEST is one CTest test, see CMakeLists.txt)
"""
import argparse
import json
import math
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import EXAMPLES, Failure, check, compile_model, run, run_tests  # noqa: E402

# ---------------------------------------------------------------- the runtime's split, in Python

M64 = (1 << 64) - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Rng:
    """xoshiro256** seeded by splitmix64 from (seed, domain, index), as runtime/rng.c."""

    def __init__(self, seed, domain, index):
        z = mix64((seed + 0x9E3779B97F4A7C15 * (domain + 1)) & M64)
        x = mix64(z ^ mix64((index + 0x632BE59BD9B4E019) & M64))
        self.s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            self.s.append(mix64(x))

    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64  # noqa: E731
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, bound):
        threshold = ((1 << 64) - bound) % bound
        while True:
            x = self.next()
            if x >= threshold:
                return x % bound


STREAM_SPLIT = 5


def held_out(labels, fraction):
    """The indices split(fraction) holds out of these class labels, as documented: the first of a
    permutation seeded by N alone, per class, counts by largest remainder (ties: lower class)."""
    n = len(labels)
    total = max(1, math.floor(fraction * n))
    order = list(range(n))
    rng = Rng(n, STREAM_SPLIT, 0)
    for i in range(n - 1, 0, -1):
        j = rng.below(i + 1)
        order[i], order[j] = order[j], order[i]
    classes = max(labels) + 1
    per = [labels.count(c) for c in range(classes)]
    take = [math.floor(fraction * per[c]) for c in range(classes)]
    while sum(take) < total:
        rest = [(fraction * per[c] - take[c]) if take[c] < per[c] else -1 for c in range(classes)]
        take[rest.index(max(rest))] += 1
    chosen = set()
    for e in order:
        if take[labels[e]] > 0:
            chosen.add(e)
            take[labels[e]] -= 1
    return sorted(chosen)


def iris_like(path, seed=0):
    """150 rows, 50 per class, sorted by class: 4 features around class-dependent means."""
    rng = np.random.default_rng(seed)
    means = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    rows = []
    for c in range(3):
        for x in means[c] + rng.normal(0, [0.5, 0.35, 0.5, 0.25], (50, 4)):
            rows.append((x, c))
    with open(path, "w") as f:
        f.write("sepal_length,sepal_width,petal_length,petal_width,species\n")
        for x, c in rows:
            f.write(",".join(f"{v:.2f}" for v in x) + f",{c}\n")
    return rows


def test_split_stratified(args):
    """split(0.2) of a class-sorted 150-row CSV holds out 30 rows, 10 per class, chosen by a
    permutation that depends on N only: for training seeds 1..8 the validation loss in the log
    equals `eval --data` on the rows computed here independently (so the held-out set is the
    same for every seed), validation accuracy is >= 0.9, and no warning is printed. With
    shuffle=false the held-out rows are the file's tail (class 2 only) and train warns."""
    data = os.path.join(args.work, "iris.csv")
    rows = iris_like(data)
    labels = [c for _, c in rows]
    chosen = held_out(labels, 0.2)
    check(len(chosen) == 30 and [sum(labels[e] == c for e in chosen) for c in range(3)] == [10, 10, 10],
          f"the reference split is not 10 per class: {chosen}")
    held = os.path.join(args.work, "held.csv")
    with open(data) as f, open(held, "w") as out:
        lines = f.read().splitlines()
        out.write(lines[0] + "\n" + "".join(lines[1 + e] + "\n" for e in chosen))
    src = os.path.join(args.work, "iris.nn")
    with open(src, "w") as f:
        f.write("input x : float[4]\ntarget species : class[3]\n"
                "logits = x -> dense(16) -> relu -> dense(3)\n"
                "loss cross_entropy(logits, species)\nmetric accuracy(logits, species)\n"
                f'train {{\n  data = csv("{data}", standardize=true)\n  validate = split(0.2)\n'
                "  optimizer = adam(lr=0.02)\n  epochs = 40\n  batch = 16\n}\n")
    exe = compile_model(args, src, "iris")
    for seed in range(1, 9):
        log = os.path.join(args.work, f"seed{seed}.jsonl")
        ckpt = os.path.join(args.work, f"seed{seed}.safetensors")
        p = run([exe, "train", "--seed", str(seed), "--log", log, "--save", ckpt])
        check("data: 120 training examples, 30 validation examples" in p.stdout and "warning" not in p.stderr,
              f"seed {seed}: stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        last = [json.loads(line) for line in open(log)][-1]
        ev = run([exe, "eval", "--load", ckpt, "--data", held]).stdout.split()
        check(ev[:2] == ["examples", "30"] and abs(float(ev[3]) - last["val_loss"]) < 1e-6,
              f"seed {seed}: the log's val_loss {last['val_loss']} is not eval's on the reference rows: {ev}")
        print(f"seed {seed}: val_accuracy {last['val_accuracy']:.4f}, val_loss {last['val_loss']:.4f} = eval on the reference rows")
        check(last["val_accuracy"] >= 0.9, f"seed {seed}: val_accuracy {last['val_accuracy']} < 0.9")
    p = run([exe, "train", "--epochs", "1", "--quiet", "--validate", "split(0.2, shuffle=false)"])
    want = ("warning: the held-out part of split(0.2, shuffle=false) has no example of class 0, which the "
            "training part has; validation says nothing about it\n")
    check(p.stderr == want, f"shuffle=false: stderr {p.stderr!r}")
    # the tail, as before: 30 rows of class 2
    tail = os.path.join(args.work, "tail.csv")
    with open(tail, "w") as out:
        out.write(lines[0] + "\n" + "".join(line + "\n" for line in lines[-30:]))
    ckpt = os.path.join(args.work, "tail.safetensors")
    log = os.path.join(args.work, "tail.jsonl")
    run([exe, "train", "--epochs", "2", "--quiet", "--validate", "split(0.2, shuffle=false)", "--save", ckpt, "--log", log])
    ev = run([exe, "eval", "--load", ckpt, "--data", tail]).stdout.split()
    last = [json.loads(line) for line in open(log)][-1]
    check(abs(float(ev[3]) - last["val_loss"]) < 1e-6, f"shuffle=false: val_loss {last['val_loss']} is not the tail's: {ev}")
    print("shuffle=false: the tail, with the warning")


BIGRAM = """input x : int[8]
target y : class[8, 256]
logits = x -> embedding(256, 16) -> dense(256)
loss cross_entropy(logits, y)
metric accuracy(logits, y)
train {{
  data = text("{data}")
  validate = split(0.1)
  optimizer = adam(lr=0.01)
  epochs = {epochs}
  batch = 16
}}
"""


def train_bigram(args, name, text, epochs):
    """A model whose logits at position t depend on byte t only (causal), trained on `text`."""
    data = os.path.join(args.work, name + ".txt")
    with open(data, "w") as f:
        f.write(text)
    src = os.path.join(args.work, name + ".nn")
    with open(src, "w") as f:
        f.write(BIGRAM.format(data=data, epochs=epochs))
    exe = compile_model(args, src, name)
    ckpt = os.path.join(args.work, name + ".safetensors")
    run([exe, "train", "--save", ckpt, "--quiet"])
    return exe, ckpt


def generate(exe, ckpt, *flags, expect=0):
    p = run([exe, "generate", "--load", ckpt, *flags], expect=expect)
    return p.stdout, p.stderr


def test_text_generate(args):
    """generate continues "abcabc..." exactly with --temperature 0 (from a short prompt, and from a
    prompt longer than the context of 8); --top-k 1 is greedy; at temperature 1 the same seed gives
    the same text and other seeds other text (a model of random letters); bad flags and a model
    that is not a byte-level language model get one exact error each, exit status 1, no output."""
    exe, ckpt = train_bigram(args, "abc", "abc" * 1000, 5)
    pattern = "abc" * 40
    for prompt, n in [("abc", 30), ("b", 25), ("abcabcabcab", 40)]:
        out, _ = generate(exe, ckpt, "--prompt", prompt, "--temperature", "0", "--tokens", str(n))
        start = pattern.index(prompt)
        want = pattern[start:start + len(prompt) + n]
        check(out == want, f"greedy from {prompt!r}: {out!r}, expected {want!r}")
        out1, _ = generate(exe, ckpt, "--prompt", prompt, "--top-k", "1", "--tokens", str(n), "--seed", "5")
        check(out1 == want, f"--top-k 1 from {prompt!r}: {out1!r}, expected {want!r}")
    print("greedy and --top-k 1 continue the pattern exactly")
    out, _ = generate(exe, ckpt, "--prompt", "c", "--temperature", "0")
    check(out == ("cab" * 70)[:201], f"the default is 200 bytes: {len(out)} bytes: {out!r}")

    rng = np.random.default_rng(4)
    letters = "".join(chr(97 + c) for c in rng.integers(0, 26, 20000))
    exe2, ckpt2 = train_bigram(args, "letters", letters, 2)
    runs = {seed: generate(exe2, ckpt2, "--prompt", "q", "--tokens", "100", "--seed", str(seed), "--top-k", "26")[0]
            for seed in ("1", "1", "2", "3")}
    a, _ = generate(exe2, ckpt2, "--prompt", "q", "--tokens", "100", "--seed", "1", "--top-k", "26")
    check(a == runs["1"], "the same seed gave different text")
    check(len({runs["1"], runs["2"], runs["3"]}) == 3, f"seeds 1, 2, 3 gave the same text: {runs}")
    check(all(len(t) == 101 and set(t) <= set(letters) for t in runs.values()), f"not 100 letters after the prompt: {runs}")
    print(f"seed 1: {runs['1'][:40]!r}...; seed 2: {runs['2'][:40]!r}...")

    bad = [
        (["--temperature", "-1"], "error: --temperature: must be a number of at least 0, got '-1'\n"),
        (["--temperature", "hot"], "error: --temperature: must be a number of at least 0, got 'hot'\n"),
        (["--temperature", "inf"], "error: --temperature: must be a number of at least 0, got 'inf'\n"),
        (["--top-k", "0"], "error: --top-k: expected an integer >= 1, got '0'\n"),
        (["--top-k", "257"], "error: --top-k: must be at most 256 (the model's byte values), got '257'\n"),
        (["--tokens", "0"], "error: --tokens: expected an integer >= 1, got '0'\n"),
        (["--tokens", "1.5"], "error: --tokens: expected an integer >= 1, got '1.5'\n"),
        (["--seed", "-1"], "error: --seed: must be an integer of at least 0, got '-1'\n"),
        (["--epochs", "2"], "error: option '--epochs' does not apply to 'generate'\n"),
    ]
    for flags, want in bad:
        out, err = generate(exe, ckpt, *flags, expect=1)
        check(out == "" and err.split("hint:")[0] == want, f"{flags}: stdout {out!r}, stderr {err!r}")
    p = run([exe, "generate", "--prompt", "x"], expect=1)
    check(p.stderr == "error: generate needs the weights: --load FILE (a checkpoint written by train --save)\n",
          f"no --load: {p.stderr!r}")
    src = os.path.join(args.work, "flat.nn")
    with open(src, "w") as f:
        f.write("model flat\ninput x : float[4]\ntarget y : class[3]\nloss cross_entropy(x -> dense(3), y)\n")
    flat = compile_model(args, src, "flat")
    p = run([flat, "generate", "--load", ckpt], expect=1)
    want = ("error: generate needs a byte-level language model, as text(...) data trains: input int[T], target "
            "class[T, 256], a cross_entropy loss; model 'flat' declares input x : float[4] and target y : class[3]\n")
    check(p.stderr == want and p.stdout == "", f"a float model: {p.stderr!r}")
    print("bad flags and a non-text model: exact messages, exit status 1")


TINY_GPT = """model tiny_gpt
input  x : int[32]
target y : class[32, 256]
h = x -> embedding(256, 32) -> position_embedding
h = h + (h -> layernorm -> attention(4, causal=true))
h = h + (h -> layernorm -> dense(64) -> gelu -> dense(32))
logits = h -> layernorm -> dense(256)
loss   cross_entropy(logits, y)
train {{
  data      = text("{data}", stride=8)
  validate  = split(0.1)
  optimizer = adam(lr=3e-3)
  epochs    = 1
  batch     = 32
  seed      = 1
}}
"""


def sentences(count_bytes, seed):
    rng = np.random.default_rng(seed)
    subj = ["the cat", "a dog", "the old man", "my sister", "the king", "a bird"]
    verb = ["sees", "likes", "finds", "follows", "feeds", "hears"]
    obj = ["the river", "a small house", "the green tree", "her friend", "the bread", "a red ball"]
    end = [".", "!", " today.", " again."]
    out, size = [], 0
    while size < count_bytes:
        out.append(f"{subj[rng.integers(6)]} {verb[rng.integers(6)]} {obj[rng.integers(6)]}{end[rng.integers(4)]}\n")
        size += len(out[-1])
    return "".join(out)


def test_text_transformer(args):
    """A small causal transformer (embedding, position_embedding, attention(causal=true),
    layernorm, dense, gelu) trained for 1 epoch on 60 KB of generated sentences: its validation
    loss in nats per byte (the --log JSONL) goes down from where the same initialization starts
    (an epoch at lr 1e-30 measures it), below log(256) and below the text's unigram entropy, which
    no model that ignores the context can beat."""
    text = sentences(60000, 7)
    data = os.path.join(args.work, "corpus.txt")
    with open(data, "w") as f:
        f.write(text)
    counts = np.bincount(np.frombuffer(text.encode(), np.uint8), minlength=256)
    p = counts[counts > 0] / len(text)
    unigram = float(-(p * np.log(p)).sum())
    src = os.path.join(args.work, "tiny_gpt.nn")
    with open(src, "w") as f:
        f.write(TINY_GPT.format(data=data))
    exe = compile_model(args, src, "tiny_gpt")
    losses = {}
    for name, flags in [("start", ["--lr", "1e-30"]), ("trained", [])]:
        log = os.path.join(args.work, name + ".jsonl")
        out = run([exe, "train", "--log", log, "--save", os.path.join(args.work, name + ".safetensors"), *flags]).stdout
        n = len(text)
        windows = (n - 33) // 8 + 1
        held = math.floor(0.1 * windows)
        train_windows = (n - ((held - 1) * 8 + 33) - 33) // 8 + 1
        check(f"data: {train_windows} training examples, {held} validation examples" in out, f"banner:\n{out}")
        losses[name] = [json.loads(line) for line in open(log)][-1]["val_loss"]
    print(f"val loss (nats/byte): {losses['start']:.4f} at the start, {losses['trained']:.4f} after 1 epoch; "
          f"log(256) = {math.log(256):.4f}, unigram entropy {unigram:.4f}")
    check(losses["trained"] < losses["start"] - 1, f"val loss did not go down: {losses}")
    check(losses["trained"] < unigram < math.log(256), f"val loss {losses['trained']} not below the unigram entropy {unigram}")
    sample, _ = generate(exe, os.path.join(args.work, "trained.safetensors"), "--prompt", "the cat ",
                         "--temperature", "0", "--tokens", "40")
    print(f"greedy: {sample!r}")
    check(sample.startswith("the cat ") and len(sample) == 48, f"generate: {sample!r}")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
