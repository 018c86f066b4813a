#!/usr/bin/python3
"""End-to-end tests of csv(..., text=COLUMN) data: token ids against an independent Python
tokenizer, the vocabulary stored in the checkpoint and reused by predict, the errors of bad text
data, and training a small text classifier (e2e.py's style and helpers).

Usage: textcsv.py TEST --nnc PATH --work DIR      (each TEST is one CTest test, see CMakeLists.txt)
"""
import collections
import csv
import json
import os
import re
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import Failure, check, compile_model, read_safetensors, run, run_tests  # noqa: E402

T = 6

# ---------------------------------------------------------------- the contract, in Python


def byte_ids(text, t=T):
    """tokenize="bytes": id = byte + 1, cut or padded with 0 to t."""
    ids = [b + 1 for b in text.encode()[:t]]
    return ids + [0] * (t - len(ids))


def words_of(text):
    """Lower-cased runs of ASCII letters and digits (bytes >= 0x80 count as letters)."""
    return [w.decode().lower() for w in re.findall(rb"[A-Za-z0-9\x80-\xff]+", text.encode())]


def build_vocab(texts, size):
    """The size - 2 most frequent words, ties by the word's bytes."""
    counts = collections.Counter(w for t in texts for w in words_of(t))
    ranked = sorted(counts, key=lambda w: (-counts[w], w.encode()))
    return ranked[:size - 2]


def word_ids(text, vocab, t=T):
    index = {w: k + 2 for k, w in enumerate(vocab)}
    ids = [index.get(w, 1) for w in words_of(text)[:t]]
    return ids + [0] * (t - len(ids))


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def write_safetensors_meta(path, tensors, meta):
    """A checkpoint with these tensors and __metadata__ (e2e.write_safetensors has no metadata)."""
    header, blobs, offset = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        raw = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# Texts with what CSV quoting must carry: commas, doubled quotes, a newline, an empty text, UTF-8.
TEXTS = ["Good, very GOOD", 'say "hi" there', "two\nlines here", "", "caf\u00e9 good good",
         "very very bad", "bad, bad film", "x"]


def id_model(args, data_spec, vocab):
    """A model whose prediction is its input's ids: embedding row i holds the number i."""
    src = os.path.join(args.work, "ids.nn")
    with open(src, "w") as f:
        f.write(f"input text : int[{T}]\ntarget t : float[{T}]\n"
                f"y = text -> embedding({vocab}, 1) -> flatten\nloss mse(y, t)\n"
                f"train {{\n  data = {data_spec}\n  epochs = 1\n}}\n")
    return compile_model(args, src, "ids")


def predicted_ids(exe, ckpt, path):
    out = run([exe, "predict", "--load", ckpt, path]).stdout.strip().split("\n")
    return [[int(round(float(v))) for v in r.split(",")] for r in out[1:]]


def test_text_ids(args):
    """bytes and words ids of raw text through predict, against the Python tokenizer; the
    vocabulary of the training data is the checkpoint's, and predict on new rows reuses it."""
    targets = ",".join(f"t{i}" for i in range(T))
    rows = [[f"r{k}", text] + [0] * T for k, text in enumerate(TEXTS)]
    train = write_csv(os.path.join(args.work, "train.csv"), ["id", "review"] + targets.split(","), rows)
    # bytes: no training needed; weights row i = i
    exe = id_model(args, f'csv("train.csv", target="{targets}", text="review")', 257)
    ckpt = os.path.join(args.work, "bytes.safetensors")
    write_safetensors_meta(ckpt, {"embedding0.weight": np.arange(257.0).reshape(257, 1)}, {})
    got = predicted_ids(exe, ckpt, train)
    want = [byte_ids(t) for t in TEXTS]
    print("bytes:", got[0], "(\"Good, very GOOD\")")
    check(got == want, f"byte ids differ:\n got {got}\nwant {want}")
    # words: train one epoch to get the checkpoint's vocabulary, then make row i = i
    vocab_size = 7
    exe = id_model(args, f'csv("train.csv", target="{targets}", text="review", tokenize="words", '
                   f'vocab={vocab_size})', 20)
    trained = os.path.join(args.work, "words.safetensors")
    run([exe, "train", "--save", trained, "--quiet"])
    _, meta = read_safetensors(trained)
    want_vocab = build_vocab(TEXTS, vocab_size)
    print("vocabulary:", want_vocab)
    check(meta.get("vocab", "").split("\n") == want_vocab,
          f"checkpoint vocabulary {meta.get('vocab')!r}, expected {want_vocab}")
    probe = os.path.join(args.work, "probe.safetensors")
    write_safetensors_meta(probe, {"embedding0.weight": np.arange(20.0).reshape(20, 1)}, meta)
    new = ["GOOD bad unseen", "very, very, very good film", "bad\nbad"]
    path = write_csv(os.path.join(args.work, "new.csv"), ["review"], [[t] for t in new])
    got = predicted_ids(exe, probe, path)
    want = [word_ids(t, want_vocab) for t in new]
    print("words of new rows:", got)
    check(got == want, f"word ids differ:\n got {got}\nwant {want}")
    # a checkpoint without the vocabulary cannot encode words
    bare = os.path.join(args.work, "bare.safetensors")
    write_safetensors_meta(bare, {"embedding0.weight": np.arange(20.0).reshape(20, 1)}, {})
    p = run([exe, "predict", "--load", bare, path], expect=1)
    print(p.stderr.strip())
    check("holds no vocabulary" in p.stderr, f"a checkpoint without vocabulary:\n{p.stderr}")


CLASSIFIER = """input text : int[12]
target label : class[2]
h = text -> embedding(40, 8) -> mean(axis=0)
logits = h -> dense(2)
loss cross_entropy(logits, label)
metric accuracy(logits, label)
train {
  data = csv("train.csv", target="label", text="review", tokenize="words", vocab=40)
  validate = split(0.25)
  optimizer = adam(lr=0.05)
  epochs = 15
  batch = 16
  seed = 3
}
"""


def make_reviews(n, seed):
    """Reviews whose label is whether 'good' words outnumber 'bad' ones."""
    rng = np.random.default_rng(seed)
    good, bad = ["great", "fine", "good", "love"], ["awful", "poor", "bad", "hate"]
    filler = ["the", "film", "was", "and", "a", "plot", "it"]
    rows = []
    for k in range(n):
        label = k % 2
        words = list(rng.choice(filler, 6)) + list(rng.choice(good if label else bad, 3)) + \
            list(rng.choice(bad if label else good, 1))
        rng.shuffle(words)
        rows.append([" ".join(w.capitalize() if rng.random() < 0.3 else w for w in words), label])
    return rows


def test_text_train(args):
    """A bag of word embeddings learns which words mean what; eval reads the stored vocabulary;
    predict prints class probabilities for raw text."""
    src = os.path.join(args.work, "cls.nn")
    with open(src, "w") as f:
        f.write(CLASSIFIER)
    write_csv(os.path.join(args.work, "train.csv"), ["review", "label"], make_reviews(200, 1))
    exe = compile_model(args, src, "cls")
    ckpt = os.path.join(args.work, "cls.safetensors")
    out = run([exe, "train", "--save", ckpt], cwd=args.work).stdout
    last = [l for l in out.split("\n") if l.startswith("epoch ")][-1]
    print(last)
    acc = float(re.search(r"val_accuracy ([0-9.]+)", last).group(1))
    check(acc >= 0.9, f"validation accuracy {acc} after training (majority rate 0.5)")
    ev = run([exe, "eval", "--load", ckpt], cwd=args.work).stdout
    print(ev.strip())
    check(abs(float(re.search(r"accuracy ([0-9.]+)", ev).group(1)) - acc) < 1e-6,
          "eval's accuracy on the held-out part differs from training's last validation")
    path = write_csv(os.path.join(args.work, "new.csv"), ["review"],
                     [["good good great film"], ["awful, poor and bad"]])
    pred = run([exe, "predict", "--load", ckpt, path]).stdout.strip().split("\n")
    print("\n".join(pred))
    check(pred[0] == "p0,p1,class", f"predict header {pred[0]!r}")
    probs = [[float(v) for v in r.split(",")[:2]] for r in pred[1:]]
    check(all(abs(sum(p) - 1) < 1e-5 for p in probs), "probabilities do not sum to 1")
    check(pred[1].endswith(",1") and pred[2].endswith(",0"), "raw text classified wrongly")


def test_text_errors(args):
    """Bad text data: the message names the file, the line and what was expected."""
    src = os.path.join(args.work, "cls.nn")
    with open(src, "w") as f:
        f.write(CLASSIFIER)
    exe = compile_model(args, src, "cls")
    good = write_csv(os.path.join(args.work, "train.csv"), ["id", "review", "label"],
                     [[k, t, k % 2] for k, t in enumerate(TEXTS)])

    def fails(spec, *want):
        p = run([exe, "train", "--data", spec, "--validate", spec, "--epochs", "1", "--quiet"],
                expect=1, cwd=args.work)
        print(p.stderr.strip())
        for w in want:
            check(w in p.stderr, f"{spec}: expected {w!r} in:\n{p.stderr}")

    # a text column that does not exist: did you mean, and the header's columns
    fails(f'csv("{good}", target="label", text="reveiw", tokenize="words")',
          "train.csv:1:1: error: no column named 'reveiw' (the text); did you mean 'review'?",
          "note: the header has columns 'id', 'review', 'label'")
    # a row with a column too few (line 3: the quoted newline of row 3 counts as a line)
    with open(os.path.join(args.work, "short.csv"), "w") as f:
        f.write('review,label\n"fine, ok",1\nno label here\n')
    fails('csv("short.csv", target="label", text="review", tokenize="words")',
          "short.csv:3:14: error: this row has 1 columns, expected 2 (as in the header)")
    # an unterminated quote, and a label out of range
    with open(os.path.join(args.work, "quote.csv"), "w") as f:
        f.write('review,label\n"never closed,1\n')
    fails('csv("quote.csv", target="label", text="review", tokenize="words")', "quote.csv:2:1: error: unterminated quoted cell")
    with open(os.path.join(args.work, "label.csv"), "w") as f:
        f.write('review,label\n"a\nb",1\nc,2\n')
    fails('csv("label.csv", target="label", text="review", tokenize="words")',
          "label.csv:4:3: error: label 2 is out of range for target 'label' (class[2] takes 0..1)")
    # the text column cannot be the target too
    fails(f'csv("{good}", target="label", text="label", tokenize="words")', "column 'label' is both the target and the text")
    # the model's checks again on the command line: length and the embedding's vocabulary
    fails(f'csv("{good}", target="label", text="review", tokenize="words", length=5)',
          "--data: csv(length=5) does not match the model's input text : int[12]")
    fails(f'csv("{good}", target="label", text="review")',
          "csv(tokenize=\"bytes\") gives ids 0..256 (0 padding, byte + 1), but the embedding of input "
          "'text' has a vocabulary of 40")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
