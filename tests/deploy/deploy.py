#!/usr/bin/python3
"""Deployment tests (--emit=lib): for the examples, the library linked into a C program
(harness.c) gives the outputs of `./model predict` on the validation set within 1e-6 relative;
two threads agree with one; the archive exports only NAME_* symbols and needs nothing beyond libc
and libm; wrong checkpoints are errors naming the tensor; examples/deploy builds and classifies.

Usage: deploy.py TEST --nnc PATH --work DIR   (each TEST is one CTest test, see CMakeLists.txt)
Training is a few hundred steps on a subset: the test is about equal outputs, not accuracy.
"""
import csv
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from e2e import EXAMPLES, FASHION, Failure, check, fashion_subset, idx_spec, load_idx, read_safetensors, run, run_tests  # noqa: E402

HARNESS = os.path.join(HERE, "harness.c")
ORT_RUN = os.path.join(HERE, "ort_run.js")
LIBC_DIRS = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]


def libc_symbols():
    """Every function libc.so.6 and libm.so.6 define (the only libraries a library may need)."""
    names = set()
    for lib in ("libc.so.6", "libm.so.6"):
        path = next(os.path.join(d, lib) for d in LIBC_DIRS if os.path.exists(os.path.join(d, lib)))
        out = run(["nm", "-D", "--defined-only", path]).stdout
        names |= {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    return names


def check_symbols(archive, prefix):
    """Exported: only PREFIX_*; undefined: only libc/libm functions (no libnnrt, no pthread pool)."""
    defined = [l.split()[-1] for l in run(["nm", "-g", "--defined-only", archive]).stdout.splitlines() if len(l.split()) == 3]
    check(sorted(defined) == sorted([f"{prefix}_predict", f"{prefix}_workspace_size"]),
          f"{archive} exports {defined}, expected {prefix}_predict and {prefix}_workspace_size only")
    undefined = [l.split()[-1] for l in run(["nm", "-u", archive]).stdout.splitlines() if len(l.split()) == 2]
    foreign = sorted(set(undefined) - libc_symbols())
    check(not foreign, f"{archive} needs symbols outside libc/libm: {foreign}")
    print(f"nm: exports {sorted(defined)}; needs {sorted(set(undefined))} (all in libc/libm)")


def emit_lib(args, source, ckpt, stem, *extra):
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    run([args.nnc, source, "--emit=lib", "--weights", ckpt, "-o", stem, *extra])
    check(os.path.exists(stem + ".a") and os.path.exists(stem + ".h"), f"{stem}.a/.h not written")


def build_harness(args, stem, prefix):
    exe = os.path.join(args.work, f"harness_{prefix}")
    run(["cc", "-std=c11", "-O2", "-Wall", "-Werror", f"-DLIB={prefix}", "-include", stem + ".h", HARNESS, stem + ".a",
         "-lm", "-lpthread", "-o", exe])
    return exe


def predict_rows(exe, ckpt, inp, size):
    """./model predict's output columns (the first `size`) as a float array [n, size]."""
    out = run([exe, "predict", "--load", ckpt, inp]).stdout.strip().split("\n")
    return np.array([[float(v) for v in r.split(",")[:size]] for r in out[1:]], dtype=np.float64)


def compare(got, ref, what, rtol=1e-6, per_row=False):
    """Elementwise |got - ref| <= rtol * max(|got|, |ref|); per_row: relative to the largest
    magnitude of the example's row instead (outputs of random models that cancel to near zero,
    where float32 rounding of the larger terms is the whole value)."""
    check(got.shape == ref.shape, f"{what}: shapes {got.shape} and {ref.shape}")
    scale = np.maximum(np.abs(got), np.abs(ref))
    if per_row:
        scale = np.broadcast_to(np.max(scale, axis=1, keepdims=True), scale.shape)
    err = np.abs(got - ref)
    rel = err / np.where(scale > 0, scale, 1)
    worst = float(np.max(rel))
    at = np.unravel_index(int(np.argmax(rel)), rel.shape)
    print(f"{what}: {got.shape[0]} examples, largest relative difference {worst:.3g} (at {at}: {got[at]!r} vs {ref[at]!r}), "
          f"largest absolute {float(np.max(err)):.3g}")
    check(np.all(err <= rtol * scale), f"{what}: differ by up to {worst:.3g} relative (> {rtol})")


def trained_example(args, model, train):
    """examples/MODEL.nn compiled and trained with the `train` arguments: (source, exe, checkpoint)."""
    source = os.path.join(EXAMPLES, f"{model}.nn")
    exe = os.path.join(args.work, model)
    run([args.nnc, source, "-o", exe])
    ckpt = os.path.join(args.work, f"{model}.safetensors")
    run([exe, "train", *train, "--save", ckpt, "--quiet"])
    return source, exe, ckpt


def lib_round_trip(args, model, train, predict_input, inputs, batch, dtype):
    """Train `model` briefly, emit its library, run the harness on `inputs` and compare with predict."""
    source, exe, ckpt = trained_example(args, model, train)
    stem = os.path.join(args.work, "lib", model)
    emit_lib(args, source, ckpt, stem)
    check_symbols(stem + ".a", model)
    harness = build_harness(args, stem, model)
    inp = os.path.join(args.work, "input.bin")
    outp = os.path.join(args.work, "output.bin")
    np.ascontiguousarray(inputs, dtype=dtype).tofile(inp)
    n = inputs.shape[0]
    print(run([harness, inp, str(n), outp, str(batch)]).stdout.strip())
    lib = np.fromfile(outp, dtype=np.float32).astype(np.float64).reshape(n, -1)
    ref = predict_rows(exe, ckpt, predict_input, lib.shape[1])
    compare(lib, ref, f"{model} library vs predict")
    return exe, ckpt, stem


def fashion_round_trip(args, model, train_count, epochs, batch, val_count=10000):
    ip, lp = fashion_subset(args.work, train_count)
    # the train block's validation set (t10k), whole or its first val_count images
    vip = f"{FASHION}/t10k-images-idx3-ubyte.gz" if val_count == 10000 else fashion_subset(args.work, val_count, "test")[0]
    images = load_idx(vip).reshape(-1, 784).astype(np.float32)  # raw pixel bytes as floats
    return lib_round_trip(args, model, ["--data", idx_spec(ip, lp), "--validate", "none", "--epochs", str(epochs)], vip,
                          images, batch, np.float32)


def test_lib_fashion_mlp(args):
    """200 steps (6400 examples, 2 epochs); the library in batches of 1000."""
    fashion_round_trip(args, "fashion_mlp", 6400, 2, 1000)


def test_lib_fashion_cnn(args):
    """100 steps; the library in batches of 64 (156 full ones and a partial one of 16)."""
    fashion_round_trip(args, "fashion_cnn", 6400, 1, 64)


def test_lib_fashion_resnet(args):
    """Batchnorm with running statistics; 50 steps; batches of 50; the first 2000 validation images
    (the residual network is the slowest example on two cores)."""
    fashion_round_trip(args, "fashion_resnet", 3200, 1, 50, 2000)


def csv_columns(path, names):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return rows, np.array([[float(r[c]) for c in names] for r in rows])


def test_lib_seattle_weather(args):
    """Standardization from the checkpoint inside the library: raw CSV features in, the held-out
    last 20% of the days (the train block's split(0.2, shuffle=false))."""
    path = os.path.join(EXAMPLES, "data", "seattle_weather.csv")
    with open(path) as f:
        lines = f.read().strip().split("\n")
    held = lines[int(0.8 * (len(lines) - 1)) + 1:]
    val = os.path.join(args.work, "val.csv")
    with open(val, "w") as f:
        f.write("\n".join([lines[0]] + held) + "\n")
    _, x = csv_columns(val, ["precipitation", "temp_min", "wind", "season_sin", "season_cos"])
    _, _, stem = lib_round_trip(args, "seattle_weather", ["--epochs", "5"], val, x.astype(np.float32), 64, np.float32)
    header = open(stem + ".h").read()
    check("standardizes" in header, "the header does not say that the library standardizes its input")
    tensors, _ = read_safetensors(os.path.join(args.work, "seattle_weather.safetensors"))
    check("__standardize.mean" in tensors, "the checkpoint holds no standardization: the test proves nothing")


def token_round_trip(args, model):
    val = os.path.join(EXAMPLES, "data", "tokens_val.csv")
    _, ids = csv_columns(val, [f"t{i}" for i in range(16)])
    exe, ckpt, stem = lib_round_trip(args, model, ["--epochs", "2"], val, ids.astype(np.int32), 100, np.int32)
    check(f"typedef int32_t {model}_input_t;" in open(stem + ".h").read(), "token ids are not int32_t in the header")


def test_lib_token_bag(args):
    """Token ids (int32) in: embedding, mean, dense."""
    token_round_trip(args, "token_bag")


def test_lib_token_attention(args):
    """Embedding, position embedding, layernorm, attention, gelu."""
    token_round_trip(args, "token_attention")


def test_lib_errors(args):
    """A wrong checkpoint is an error naming the tensor, and nothing is written; so are a header
    with text after its JSON object, a missing --weights and a library name that is not a C
    identifier."""
    mlp = os.path.join(EXAMPLES, "fashion_mlp.nn")
    bag = os.path.join(EXAMPLES, "token_bag.nn")
    exe = os.path.join(args.work, "token_bag")
    run([args.nnc, bag, "-o", exe])
    ckpt = os.path.join(args.work, "bag.safetensors")
    run([exe, "train", "--epochs", "1", "--save", ckpt, "--quiet"])
    stem = os.path.join(args.work, "out", "m")
    os.makedirs(os.path.dirname(stem))

    def fails(cmd, *expected):
        p = run(cmd, expect=1)
        for e in expected:
            check(e in p.stderr, f"{' '.join(cmd)}: expected\n  {e}\nin stderr:\n{p.stderr}")
        check(not os.path.exists(stem + ".a") and not os.path.exists(stem + ".h"), "a failed --emit=lib wrote files")

    # another model's checkpoint: its first tensor of a different shape is named
    fails([args.nnc, mlp, "--emit=lib", "--weights", ckpt, "-o", stem],
          f"nnc: error: checkpoint '{ckpt}': tensor 'embedding0.weight' is not a tensor of model 'fashion_mlp'",
          f"nnc: error: checkpoint '{ckpt}': tensor 'dense0.weight' has shape [16,16], the model expects [256,784]",
          "nnc: note: was the checkpoint written by another model")
    # the same model with a wider layer: misshapen tensor
    wide = write_wide(args, bag)
    fails([args.nnc, wide, "--emit=lib", "--weights", ckpt, "-o", stem],
          f"nnc: error: checkpoint '{ckpt}': tensor 'dense0.weight' has shape [16,16], the model expects [32,16]")
    # a missing tensor: a checkpoint without dense1.bias
    tensors, meta = read_safetensors(ckpt)
    del tensors["dense1.bias"]
    partial = os.path.join(args.work, "partial.safetensors")
    write_safetensors(partial, tensors)
    fails([args.nnc, bag, "--emit=lib", "--weights", partial, "-o", stem],
          f"nnc: error: checkpoint '{partial}': tensor 'dense1.bias' of model 'token_bag' is missing")
    # a header with text after its JSON object (the runtime rejects it too)
    with open(ckpt, "rb") as f:
        whole = f.read()
    size = int.from_bytes(whole[:8], "little")
    trailing = os.path.join(args.work, "trailing.safetensors")
    body = whole[8:8 + size].rstrip(b" ") + b" x"
    with open(trailing, "wb") as f:
        f.write(len(body).to_bytes(8, "little") + body + whole[8 + size:])
    fails([args.nnc, bag, "--emit=lib", "--weights", trailing, "-o", stem],
          f"nnc: error: checkpoint '{trailing}': the header is not valid JSON (corrupt file)")
    fails([args.nnc, bag, "--emit=lib", "--weights", os.path.join(args.work, "nope.safetensors"), "-o", stem],
          "nnc: error: cannot open checkpoint")
    fails([args.nnc, bag, "--emit=lib", "-o", stem], "nnc: error: --emit=lib needs the trained weights: --weights CKPT")
    fails([args.nnc, bag, "--emit=lib", "--weights", ckpt, "-o", os.path.join(args.work, "out", "my-model")],
          "nnc: error: --emit=lib: the library name 'my-model' is not a C identifier")
    fails([args.nnc, bag, "--weights", ckpt, "-o", stem], "nnc: error: --weights is for --emit=lib")
    # the library checks token ids: out of the vocabulary is ETOKEN (2), not a wild read
    emit_lib(args, bag, ckpt, stem)
    prog = os.path.join(args.work, "bad_ids.c")
    with open(prog, "w") as f:
        f.write('#include "m.h"\n#include <stdio.h>\n#include <stdlib.h>\nint main(void) {\n'
                '  int32_t ids[m_INPUT_SIZE] = {0}; float out[m_OUTPUT_SIZE];\n'
                '  void *ws = malloc(m_workspace_size(1));\n'
                '  int ok = m_predict(ids, 1, out, ws);\n  ids[3] = 64; int big = m_predict(ids, 1, out, ws);\n'
                '  ids[3] = -1; int neg = m_predict(ids, 1, out, ws);\n'
                '  printf("%d %d %d\\n", ok, big, neg); return 0;\n}\n')
    binary = os.path.join(args.work, "bad_ids")
    run(["cc", "-std=c11", "-Wall", "-Werror", "-I", os.path.dirname(stem), prog, stem + ".a", "-lm", "-o", binary])
    got = run([binary]).stdout.split()
    check(got == ["0", "2", "2"], f"token ids 0 / 64 / -1 gave {got}, expected 0 2 2 (m_ETOKEN for ids outside [0, 64))")


def write_wide(args, bag):
    text = open(bag).read().replace("dense(16)", "dense(32)")
    path = os.path.join(args.work, "wide.nn")
    with open(path, "w") as f:
        f.write(text)
    return path


def write_safetensors(path, tensors, meta=None):
    import json
    import struct
    header, blobs, offset = ({"__metadata__": meta} if meta else {}), [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def test_deploy_example(args):
    """examples/deploy: one C program linking fashion_mlp's and fashion_cnn's libraries classifies
    Fashion-MNIST test images; its accuracies equal those of the models' own predict."""
    ip, lp = fashion_subset(args.work, 3200)
    vip, vlp = fashion_subset(args.work, 1000, "test", gz=False)
    libdir = os.path.join(args.work, "libs")
    accuracy = {}
    labels = load_idx(f"{FASHION}/t10k-labels-idx1-ubyte.gz")[:1000]
    for model in ("fashion_mlp", "fashion_cnn"):
        source = os.path.join(EXAMPLES, f"{model}.nn")
        exe = os.path.join(args.work, model)
        run([args.nnc, source, "-o", exe])
        ckpt = os.path.join(args.work, f"{model}.safetensors")
        run([exe, "train", "--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "1", "--save", ckpt, "--quiet"])
        emit_lib(args, source, ckpt, os.path.join(libdir, model))
        probs = predict_rows(exe, ckpt, vip, 10)
        accuracy[model] = float(np.mean(np.argmax(probs, axis=1) == labels))
    build = os.path.join(args.work, "build")
    run(["make", "-C", os.path.join(EXAMPLES, "deploy"), f"LIBS={libdir}", f"OUT={build}", f"NNC={args.nnc}", "classify"])
    out = run([os.path.join(build, "classify"), vip, vlp]).stdout
    print(out.strip())
    for model, acc in accuracy.items():
        check(f"{model}: accuracy {acc:.4f}" in out, f"classify does not report {model}'s accuracy {acc:.4f}:\n{out}")


# ---------------------------------------------------------------- raw text (NAME_predict_text)

TEXT_HARNESS = os.path.join(HERE, "text_harness.c")


def hostile_texts():
    """Texts at the tokenizer's edges, as bytes: empty, only punctuation or blanks, very long (a
    megabyte, far past the 64 ids), UTF-8 and bytes >= 0x80 that are no UTF-8 at all, mixed case,
    a word longer than the 255 bytes a word keeps, a known word glued to digits and to a long tail,
    quotes, commas and line breaks inside the cell."""
    long_word = b"politics" * 40  # 320 bytes: kept as its first 255
    return [b"", b"!!!", b"... ,;:-- ?!", b"   \t  ", b"\"\"\"", b"a", b"The", b"THE the ThE",
            b"the " * 250000, b"war " * 63 + b"peace love",
            "café naïve señor Straße 東京 😀".encode(), b"\xff\xfe\xc3 abc \xe2\x82 \x80\x80 z\xc3\xa9", b"\xc0\xaf\xed\xa0\x80",
            long_word, long_word + b" science", b"x" * 255 + b"y", b"2024 1999s 3d", b"science2 work-life poems;songs",
            b"line one\nline two\n\nthree", b"tab\tseparated\x01control\x7fbytes", b"a, b, c", b"~" * 5000]


def write_text_csv(path, texts, labels=None):
    """A CSV with one quoted text column (and a label column when given), written as bytes: the
    cell's text is exactly the given bytes (quotes doubled)."""
    with open(path, "wb") as f:
        f.write(b"text,label\n" if labels else b"text\n")
        for i, t in enumerate(texts):
            f.write(b'"' + t.replace(b'"', b'""') + b'"' + (f",{labels[i]}".encode() if labels else b"") + b"\n")


def text_round_trip(args, model, source, batch):
    """Train `model` one epoch, emit its library; the raw-text entry point on the whole validation
    CSV's text column and on hostile texts gives predict's outputs within 1e-6 relative."""
    exe = os.path.join(args.work, model)
    run([args.nnc, source, "-o", exe])
    ckpt = os.path.join(args.work, f"{model}.safetensors")
    run([exe, "train", "--epochs", "1", "--save", ckpt, "--quiet"])
    stem = os.path.join(args.work, "lib", model)
    emit_lib(args, source, ckpt, stem)
    defined = sorted(l.split()[-1] for l in run(["nm", "-g", "--defined-only", stem + ".a"]).stdout.splitlines() if len(l.split()) == 3)
    want = sorted(f"{model}_{s}" for s in ("predict", "workspace_size", "predict_text", "text_workspace_size"))
    check(defined == want, f"{stem}.a exports {defined}, expected {want}")
    undefined = [l.split()[-1] for l in run(["nm", "-u", stem + ".a"]).stdout.splitlines() if len(l.split()) == 2]
    foreign = sorted(set(undefined) - libc_symbols())
    check(not foreign, f"{stem}.a needs symbols outside libc/libm: {foreign}")
    header = open(stem + ".h").read()
    check(f"int {model}_predict_text(const char *const *texts, int n, float *output, void *workspace);" in header,
          "the header does not declare predict_text")
    harness = os.path.join(args.work, f"text_harness_{model}")
    run(["cc", "-std=c11", "-O2", "-Wall", "-Werror", f"-DLIB={model}", "-include", stem + ".h", TEXT_HARNESS, stem + ".a", "-lm",
         "-o", harness])
    val = os.path.join(EXAMPLES, "data", "fortunes_val.csv")
    with open(val, newline="", encoding="utf-8") as f:
        texts = [r["text"].encode() for r in csv.DictReader(f)]
    hostile = os.path.join(args.work, f"{model}_hostile.csv")
    write_text_csv(hostile, hostile_texts())
    for what, data, items in (("validation set", val, texts), ("hostile texts", hostile, hostile_texts())):
        check(all(b"\0" not in t for t in items), "a text holds a NUL byte")
        blob = os.path.join(args.work, "texts.bin")
        with open(blob, "wb") as f:
            f.write(b"".join(t + b"\0" for t in items))
        out = os.path.join(args.work, "text_out.bin")
        print(run([harness, blob, out, str(batch)]).stdout.strip())
        got = np.fromfile(out, dtype=np.float32).astype(np.float64).reshape(len(items), -1)
        ref = predict_rows(exe, ckpt, data, got.shape[1])
        compare(got, ref, f"{model}: predict_text on the {what} vs predict")
    return exe, ckpt, stem


def test_lib_text_bag(args):
    """Words, a bag of embeddings; calls of 300 texts (tokenized in chunks of 256 inside)."""
    text_round_trip(args, "text_bag", os.path.join(EXAMPLES, "text_bag.nn"), 300)


def test_lib_text_lstm(args):
    """Words into an LSTM that stops at the padding: the padding ids must be exactly where predict puts them."""
    text_round_trip(args, "text_lstm", os.path.join(EXAMPLES, "text_lstm.nn"), 64)


def test_lib_text_encoder(args):
    """Words into a transformer encoder with learned positions: every id's position matters."""
    text_round_trip(args, "text_encoder", os.path.join(EXAMPLES, "text_encoder.nn"), 1000)


def test_lib_text_vocab_edges(args):
    """The vocabulary's edges, on a training set made for them: a 300-byte word (the vocabulary
    keeps its first 255 bytes, so another word with the same 255 bytes is the same id), words with
    bytes >= 0x80 (UTF-8 and not), mixed case (one lower-cased word), digits, words that differ in
    one byte (4 of the 38 kept words share a home slot of the table: lookups probe); vocab=40
    keeps fewer words than the data has, so frequent and rare words meet known and unknown ids. The library against predict on the
    training CSV and on texts built from those words; the aarch64 library under qemu (when
    there) against the native one within 1e-5."""
    import random
    rng = random.Random(3)
    long_word = b"Supercalifragilistic" * 15  # 300 bytes
    words = [long_word, b"caf\xc3\xa9", b"CAF\xc3\xa9", b"na\xc3\xafve", b"\xff\xfeodd", b"\xe2\x82", b"x\x80y", b"Alpha", b"alpha",
             b"ALPHA", b"beta", b"bet", b"betb", b"gamma1", b"1gamma", b"42", b"0", b"delta", b"epsilon", b"zeta", b"eta", b"theta"]
    words += [f"w{i}".encode() for i in range(60)]
    rows, labels = [], []
    for i in range(300):
        k = rng.randint(0, 80)
        rows.append(b" ".join(rng.choice(words[:30] if i % 2 else words) for _ in range(k)) + (b"!" if i % 3 else b""))
        labels.append(str(i % 4))
    data = os.path.join(args.work, "edges.csv")
    write_text_csv(data, rows, labels)
    text = open(os.path.join(EXAMPLES, "text_bag.nn")).read()
    text = text.replace("model text_bag", "model text_edges").replace("param vocab = 4000", "param vocab = 40")
    text = text.replace('"data/fortunes_train.csv"', f'"{data}"').replace('"data/fortunes_val.csv"', f'"{data}"')
    source = os.path.join(args.work, "text_edges.nn")
    with open(source, "w") as f:
        f.write(text)
    exe = os.path.join(args.work, "text_edges")
    run([args.nnc, source, "-o", exe])
    ckpt = os.path.join(args.work, "text_edges.safetensors")
    run([exe, "train", "--epochs", "2", "--save", ckpt, "--quiet"])
    # the header is UTF-8 JSON (strict); a word's byte that is not UTF-8 is the escape \udcXX,
    # Python's surrogateescape: the words come back byte for byte
    import json
    import struct

    def header_vocab(path):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            return json.loads(f.read(n).decode("utf-8"))["__metadata__"]["vocab"].encode("utf-8", "surrogateescape")

    vocab = header_vocab(ckpt)
    kept = vocab.split(b"\n")
    check(long_word[:255].lower() in kept, "the 300-byte word is not in the vocabulary as its first 255 bytes")
    for word in (b"\xff\xfeodd", b"\xe2\x82", b"x\x80y", b"caf\xc3\xa9"):
        check(word in kept, f"the word {word!r} is not in the vocabulary byte for byte")
    # the runtime reads the escapes back to the bytes: training on from the checkpoint keeps its words
    resumed = os.path.join(args.work, "text_edges_resumed.safetensors")
    run([exe, "train", "--load", ckpt, "--epochs", "1", "--save", resumed, "--quiet"])
    check(header_vocab(resumed) == vocab, "the vocabulary changed when training went on from the checkpoint")
    stem = os.path.join(args.work, "lib", "text_edges")
    emit_lib(args, source, ckpt, stem)
    harness = os.path.join(args.work, "text_harness_edges")
    run(["cc", "-std=c11", "-O2", "-Wall", "-Werror", "-DLIB=text_edges", "-include", stem + ".h", TEXT_HARNESS, stem + ".a", "-lm",
         "-o", harness])
    probes = [long_word, long_word[:255], long_word[:254], long_word[:255] + b"TAIL", long_word.lower() + b"zzz", b"Caf\xc3\xa9 CAF\xc3\x89",
              b"alpha-ALPHA_Alpha", b"bet beta betb betc", b"gamma1gamma 1gamma", b"w1 w10 w59 w60 w0", b"42 042 0 00",
              b"\xff\xfeodd\xe2\x82x\x80y", *rows[:40]]
    probe_csv = os.path.join(args.work, "edges_probe.csv")
    write_text_csv(probe_csv, probes)
    for what, path, items in (("training set", data, rows), ("probes", probe_csv, probes)):
        blob = os.path.join(args.work, "texts.bin")
        with open(blob, "wb") as f:
            f.write(b"".join(t + b"\0" for t in items))
        out = os.path.join(args.work, "text_out.bin")
        print(run([harness, blob, out, "7"]).stdout.strip())
        got = np.fromfile(out, dtype=np.float32).astype(np.float64).reshape(len(items), -1)
        compare(got, predict_rows(exe, ckpt, path, got.shape[1]), f"text_edges: predict_text on the {what} vs predict")
    # the same tokenizer compiled for aarch64, under qemu (when there): the native library's outputs
    if shutil.which("qemu-aarch64") and shutil.which("aarch64-linux-gnu-gcc") and os.path.isdir("/usr/aarch64-linux-gnu"):
        arm_stem = os.path.join(args.work, "arm", "text_edges")
        emit_lib(args, source, ckpt, arm_stem, "--target=aarch64-linux-gnu")
        arm_harness = os.path.join(args.work, "text_harness_edges_arm")
        run(["aarch64-linux-gnu-gcc", "-std=c11", "-O2", "-DLIB=text_edges", "-include", arm_stem + ".h", TEXT_HARNESS,
             arm_stem + ".a", "-lm", "-o", arm_harness])
        arm_out = os.path.join(args.work, "text_out_arm.bin")
        run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", arm_harness, blob, arm_out, "7"])
        compare(np.fromfile(arm_out, dtype=np.float32).astype(np.float64).reshape(len(probes), -1), got,
                "text_edges: aarch64 predict_text (qemu) vs native predict_text", rtol=1e-5)
    else:
        print("aarch64 check skipped: qemu-aarch64 or aarch64-linux-gnu-gcc missing")


def test_lib_text_bytes(args):
    """tokenize="bytes" (text_bag.nn on bytes: embedding(257, ...)): byte + 1 for the first 64
    bytes, no vocabulary; also a checkpoint without the vocabulary for a words model, or with
    more words than vocab= has room for, is an error and writes nothing."""
    source = os.path.join(args.work, "text_bytes.nn")
    text = open(os.path.join(EXAMPLES, "text_bag.nn")).read()
    text = text.replace("model text_bag", "model text_bytes").replace("param vocab = 4000", "param vocab = 257")
    text = text.replace('tokenize="words", vocab=vocab', 'tokenize="bytes"')
    check(text.count('tokenize="bytes"') == 2, "text_bag.nn changed: cannot derive the bytes model")
    with open(source, "w") as f:
        f.write(text.replace('"data/', f'"{EXAMPLES}/data/'))
    _, ckpt, _ = text_round_trip(args, "text_bytes", source, 128)
    # text_bag's library from a checkpoint without the vocabulary (a bytes model's keys differ, so
    # strip the metadata of a real text_bag checkpoint instead)
    bag = os.path.join(EXAMPLES, "text_bag.nn")
    exe = os.path.join(args.work, "text_bag_novocab")
    run([args.nnc, bag, "-o", exe])
    full = os.path.join(args.work, "bag_full.safetensors")
    run([exe, "train", "--epochs", "1", "--save", full, "--quiet"])
    tensors, meta = read_safetensors(full)
    check("vocab" in meta, "text_bag's checkpoint holds no vocab: the test proves nothing")
    bare = os.path.join(args.work, "bag_bare.safetensors")
    write_safetensors(bare, {k: v for k, v in tensors.items() if not k.startswith("optimizer.")})
    stem = os.path.join(args.work, "novocab", "m")
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    p = run([args.nnc, bag, "--emit=lib", "--weights", bare, "-o", stem], expect=1)
    check(f"nnc: error: checkpoint '{bare}' holds no vocabulary, but model 'text_bag' reads csv(..., tokenize=\"words\") text"
          in p.stderr, f"no vocabulary: unexpected stderr\n{p.stderr}")
    check(not os.path.exists(stem + ".a") and not os.path.exists(stem + ".h"), "a failed --emit=lib wrote files")
    # a vocabulary larger than csv(vocab=4000) has room for (4000 - 2 words): as eval says it
    big = os.path.join(args.work, "bag_big.safetensors")
    write_safetensors(big, tensors, {"vocab": "\n".join(f"w{i}" for i in range(3999))})
    p = run([args.nnc, bag, "--emit=lib", "--weights", big, "-o", stem], expect=1)
    check(f"nnc: error: checkpoint '{big}': the vocabulary has 3999 words, but csv(vocab=4000) has room for 3998" in p.stderr,
          f"too large a vocabulary: unexpected stderr\n{p.stderr}")
    check(not os.path.exists(stem + ".a") and not os.path.exists(stem + ".h"), "a failed --emit=lib wrote files")


def test_deploy_text_example(args):
    """examples/deploy/fortune.c: text_bag's library on raw text lines from stdin; its category and
    probabilities for the first 100 validation fortunes (flattened to one line each) are
    predict's on a CSV of those lines."""
    source = os.path.join(EXAMPLES, "text_bag.nn")
    exe = os.path.join(args.work, "text_bag")
    run([args.nnc, source, "-o", exe])
    ckpt = os.path.join(args.work, "bag.safetensors")
    run([exe, "train", "--epochs", "2", "--save", ckpt, "--quiet"])
    with open(os.path.join(EXAMPLES, "data", "fortunes_val.csv"), newline="", encoding="utf-8") as f:
        lines = [" ".join(r["text"].split()) for r in csv.DictReader(f)][:100]
    data = os.path.join(args.work, "lines.csv")
    write_text_csv(data, [l.encode() for l in lines])
    libdir = os.path.join(args.work, "libs")
    os.makedirs(libdir, exist_ok=True)
    build = os.path.join(args.work, "build")
    run(["make", "-C", os.path.join(EXAMPLES, "deploy"), f"LIBS={libdir}", f"OUT={build}", f"NNC={args.nnc}",
         f"BAG_WEIGHTS={ckpt}", "fortune"])
    out = run([os.path.join(build, "fortune")], input="\n".join(lines) + "\n").stdout.strip().split("\n")
    check(len(out) == len(lines), f"fortune printed {len(out)} lines for {len(lines)} texts")
    names = ["politics", "science", "songs-poems", "work"]
    ref = predict_rows(exe, ckpt, data, 4)
    got = np.array([[float(v) for v in row.split()[1:]] for row in out])
    check(all(row.split()[0] == names[int(np.argmax(r))] for row, r in zip(out, ref)), "fortune's categories are not predict's")
    check(np.all(np.abs(got - ref) <= 6e-5), f"fortune's probabilities (4 decimals) differ from predict's by {np.max(np.abs(got - ref)):.3g}")
    print("\n".join(out[:3]))


SKIP = 77  # CTest's SKIP_RETURN_CODE for these tests (CMakeLists.txt)


# ---------------------------------------------------------------- ONNX (--emit=onnx) in ONNX Runtime

def ort_dir(args):
    """Where the fixture test onnx_runtime_install puts npm's onnxruntime-node (beside the work dirs)."""
    return os.path.join(os.path.dirname(args.work), "onnxruntime")


def test_onnx_runtime_install(args):
    """CTest fixture: `npm install --ignore-scripts onnxruntime-node` into a folder of the build
    tree (the package carries libonnxruntime.so; the install script would download more). When npm
    or the registry is unreachable it says why, and the onnx_* tests then skip, saying so."""
    folder = ort_dir(args)
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, "unavailable.txt")
    if os.path.exists(marker):
        os.remove(marker)
    if os.path.isdir(os.path.join(folder, "node_modules", "onnxruntime-node")):
        print("onnxruntime-node is installed in", folder)
        return
    reason = None
    if not shutil.which("npm") or not shutil.which("node"):
        reason = "node/npm are not installed (Debian: nodejs npm, which .ci/run installs)"
    else:
        p = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", folder, "onnxruntime-node"],
                           capture_output=True, text=True, timeout=280)
        if p.returncode != 0:
            reason = "npm install onnxruntime-node failed (registry unreachable?):\n" + p.stderr[-2000:]
    if reason:
        with open(marker, "w") as f:
            f.write(reason + "\n")
        print("ONNX Runtime unavailable, the onnx_* tests will skip:", reason)
    else:
        print("installed onnxruntime-node into", folder)


def require_ort(args):
    folder = ort_dir(args)
    marker = os.path.join(folder, "unavailable.txt")
    if not os.path.isdir(os.path.join(folder, "node_modules", "onnxruntime-node")):
        reason = open(marker).read().strip() if os.path.exists(marker) else "the fixture deploy.onnx_runtime_install did not run"
        print(f"SKIP: no ONNX Runtime to check the export against: {reason}")
        sys.exit(SKIP)
    return os.path.join(folder, "node_modules")


def onnx_round_trip(args, model, train, predict_input, inputs, dtype, rtol=1e-5):
    """Train `model` briefly, export it, run ONNX Runtime on `inputs` and compare with predict."""
    modules = require_ort(args)
    source, exe, ckpt = trained_example(args, model, train)
    onnx = os.path.join(args.work, f"{model}.onnx")
    run([args.nnc, source, "--emit=onnx", "--weights", ckpt, "-o", onnx])
    inp = os.path.join(args.work, "input.bin")
    outp = os.path.join(args.work, "ort.bin")
    np.ascontiguousarray(inputs, dtype=dtype).tofile(inp)
    dims = ",".join(str(d) for d in inputs.shape)
    env = dict(os.environ, NODE_PATH=modules)
    print(run(["node", ORT_RUN, onnx, inp, "int32" if dtype == np.int32 else "float32", dims, outp, "1", "1000"], env=env).stdout.strip())
    got = np.fromfile(outp, dtype=np.float32).astype(np.float64).reshape(inputs.shape[0], -1)
    ref = predict_rows(exe, ckpt, predict_input, got.shape[1])
    # Relative to each row's largest output: a class probability's relative error is its logit's
    # absolute error, which another summation order (MLAS's GEMM) sets at a few float32 ulps of
    # the logits' magnitude (~1e-5 at |logit| ~ 20) however tiny the probability is.
    compare(got, ref, f"{model}: ONNX Runtime vs predict", rtol=rtol, per_row=True)


def fashion_onnx(args, model, train_count, val_count=10000):
    ip, lp = fashion_subset(args.work, train_count)
    vip = f"{FASHION}/t10k-images-idx3-ubyte.gz" if val_count == 10000 else fashion_subset(args.work, val_count, "test")[0]
    images = load_idx(vip).reshape(-1, 1, 28, 28).astype(np.float32)
    onnx_round_trip(args, model, ["--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "1"], vip, images, np.float32)


def test_onnx_fashion_mlp(args):
    """Flatten, Gemm, Relu, the scale as a Mul and Softmax; the whole validation set."""
    fashion_onnx(args, "fashion_mlp", 6400)


def test_onnx_fashion_cnn(args):
    """Conv, MaxPool; the whole validation set."""
    fashion_onnx(args, "fashion_cnn", 3200)


def test_onnx_fashion_resnet(args):
    """BatchNormalization with the running statistics, residual Add, GlobalAveragePool; 2000 images."""
    fashion_onnx(args, "fashion_resnet", 3200, 2000)


def test_onnx_fashion_mlp_wide(args):
    """LayerNormalization and dropout (Identity in inference)."""
    fashion_onnx(args, "fashion_mlp_wide", 3200, 2000)


def test_onnx_seattle_weather(args):
    """Standardization as Sub/Div of the checkpoint's statistics."""
    path = os.path.join(EXAMPLES, "data", "seattle_weather.csv")
    with open(path) as f:
        lines = f.read().strip().split("\n")
    val = os.path.join(args.work, "val.csv")
    with open(val, "w") as f:
        f.write("\n".join([lines[0]] + lines[int(0.8 * (len(lines) - 1)) + 1:]) + "\n")
    _, x = csv_columns(val, ["precipitation", "temp_min", "wind", "season_sin", "season_cos"])
    onnx_round_trip(args, "seattle_weather", ["--epochs", "5"], val, x, np.float32)


def token_onnx(args, model):
    val = os.path.join(EXAMPLES, "data", "tokens_val.csv")
    _, ids = csv_columns(val, [f"t{i}" for i in range(16)])
    onnx_round_trip(args, model, ["--epochs", "2"], val, ids, np.int32)


def test_onnx_token_bag(args):
    """Gather of int32 ids, ReduceSum for the mean."""
    token_onnx(args, "token_bag")


OP_MODELS = ["attention.nn", "batchnorm.nn", "concat.nn", "conv1d.nn", "conv_ops.nn", "embedding.nn", "layernorm.nn", "more_ops.nn",
             "pool_dropout.nn", "pool_rows.nn", "reduce.nn", "silu_gelu.nn"]


def test_onnx_ops(args):
    """Every op of the test models (tests/e2e/models: causal and bias-free attention, transpose,
    conv1d, pools on [c,t], concat, reshape, sum/mean, leaky_relu, silu, gelu (both), batchnorm,
    dropout, arithmetic, ...): each trained one epoch on random data, exported, and run in ONNX
    Runtime on 64 random examples against predict (1e-5 relative to each row's largest value)."""
    modules = require_ort(args)
    import re
    rng = np.random.default_rng(5)
    for name in OP_MODELS:
        source = os.path.join(HERE, "..", "e2e", "models", name)
        text = open(source).read()
        inp = re.search(r"^\s*input\s+(\w+)\s*:\s*(int|float)\[([\d, ]+)\]", text, re.M)
        tgt = re.search(r"^\s*target\s+(\w+)\s*:\s*(class|float)\[([\d, ]+)\]", text, re.M)
        in_size = int(np.prod([int(d) for d in inp.group(3).split(",")]))
        count = 64
        x = rng.integers(0, 5, (count, in_size)) if inp.group(2) == "int" else rng.uniform(-2, 2, (count, in_size)).astype(np.float32)
        if tgt.group(2) == "class":
            y, ycols = rng.integers(0, int(tgt.group(3).split(",")[-1]), (count, 1)), ["label"]
        else:
            k = int(np.prod([int(d) for d in tgt.group(3).split(",")]))
            y, ycols = rng.uniform(-1, 1, (count, k)).astype(np.float32), [f"y{i}" for i in range(k)]
        data = os.path.join(args.work, f"{name}.csv")
        with open(data, "w") as f:
            f.write(",".join([f"x{i}" for i in range(in_size)] + ycols) + "\n")
            for row_x, row_y in zip(x, y):
                f.write(",".join(repr(float(v)) if inp.group(2) == "float" else str(int(v)) for v in row_x) + "," +
                        ",".join(repr(float(v)) for v in row_y) + "\n")
        exe = os.path.join(args.work, name[:-3])
        run([args.nnc, source, "-o", exe])
        ckpt = os.path.join(args.work, f"{name}.safetensors")
        spec = f'csv("{data}", target="{",".join(ycols)}")'
        run([exe, "train", "--data", spec, "--validate", "none", "--epochs", "1", "--save", ckpt, "--quiet"])
        onnx = os.path.join(args.work, f"{name}.onnx")
        run([args.nnc, source, "--emit=onnx", "--weights", ckpt, "-o", onnx])
        xin = os.path.join(args.work, "x.bin")
        outp = os.path.join(args.work, "ort.bin")
        dims = [count] + [int(d) for d in inp.group(3).split(",")]
        np.ascontiguousarray(x, dtype=np.int32 if inp.group(2) == "int" else np.float32).tofile(xin)
        run(["node", ORT_RUN, onnx, xin, "int32" if inp.group(2) == "int" else "float32", ",".join(map(str, dims)), outp],
            env=dict(os.environ, NODE_PATH=modules))
        got = np.fromfile(outp, dtype=np.float32).astype(np.float64).reshape(count, -1)
        pred = run([exe, "predict", "--load", ckpt, spec]).stdout.strip().split("\n")[1:]
        ref = np.array([[float(v) for v in r.split(",")[:got.shape[1]]] for r in pred])
        compare(got, ref, f"{name}: ONNX Runtime vs predict", rtol=1e-5, per_row=True)


def test_onnx_token_attention(args):
    """Position embedding, LayerNormalization, attention (Slice/Reshape/Transpose/MatMul/Softmax),
    gelu spelled with Erf."""
    token_onnx(args, "token_attention")


def test_lib_aarch64(args):
    """--target=aarch64-linux-gnu: the aarch64 library, built with Debian's aarch64-linux-gnu-gcc
    and run under qemu-aarch64, gives the native library's outputs within 1e-5 relative (MLP and
    CNN, the CNN's second convolution as Winograd on NEON, on 300 test images; token_attention, with layernorm/attention/gelu, on 200 rows; the standardized
    regression with --target-cpu=cortex-a72). Skipped, saying so, without qemu or the compiler."""
    missing = [t for t in ("qemu-aarch64", "aarch64-linux-gnu-gcc") if not shutil.which(t)]
    if missing or not os.path.isdir("/usr/aarch64-linux-gnu"):
        print(f"SKIP: {', '.join(missing) or '/usr/aarch64-linux-gnu'} missing (Debian: qemu-user gcc-aarch64-linux-gnu "
              "libc6-dev-arm64-cross, which .ci/run installs)")
        sys.exit(SKIP)
    ip, lp = fashion_subset(args.work, 1000)
    vip, _ = fashion_subset(args.work, 300, "test")
    cases = [("fashion_mlp", ["--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "1"],
              load_idx(vip).reshape(-1, 784).astype(np.float32), []),
             # Winograd convolutions on 4-lane NEON vectors against the host's 16 or 8
             ("fashion_cnn", ["--data", idx_spec(ip, lp), "--validate", "none", "--epochs", "1"],
              load_idx(vip).reshape(-1, 784).astype(np.float32), []),
             ("token_attention", ["--epochs", "1"],
              csv_columns(os.path.join(EXAMPLES, "data", "tokens_val.csv"), [f"t{i}" for i in range(16)])[1][:200].astype(np.int32), []),
             ("seattle_weather", ["--epochs", "2"],
              csv_columns(os.path.join(EXAMPLES, "data", "seattle_weather.csv"),
                          ["precipitation", "temp_min", "wind", "season_sin", "season_cos"])[1][-200:].astype(np.float32),
              ["--target-cpu=cortex-a72"])]
    for model, train, inputs, cpu in cases:
        source, exe, ckpt = trained_example(args, model, train)
        inp = os.path.join(args.work, f"{model}.in")
        inputs.tofile(inp)
        n = str(inputs.shape[0])
        outputs = {}
        for arch, cc, prefix_cmd, extra in (("native", "cc", [], []),
                                            ("aarch64", "aarch64-linux-gnu-gcc", ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"],
                                             ["--target=aarch64-linux-gnu", *cpu])):
            stem = os.path.join(args.work, arch, model)
            emit_lib(args, source, ckpt, stem, *extra)
            harness = os.path.join(args.work, f"harness_{arch}_{model}")
            run([cc, "-std=c11", "-O2", f"-DLIB={model}", "-include", stem + ".h", HARNESS, stem + ".a", "-lm", "-lpthread",
                 "-o", harness])
            out = os.path.join(args.work, f"{model}.{arch}.out")
            run([*prefix_cmd, harness, inp, n, out, "50", "1"])
            outputs[arch] = np.fromfile(out, dtype=np.float32).astype(np.float64)
        machine = run(["readelf", "-h", os.path.join(args.work, "aarch64", model + ".a")]).stdout
        check("AArch64" in machine, f"the --target=aarch64-linux-gnu library is not AArch64 code:\n{machine}")
        compare(outputs["aarch64"].reshape(inputs.shape[0], -1), outputs["native"].reshape(inputs.shape[0], -1),
                f"{model}: aarch64 (qemu{' ' + cpu[0] if cpu else ''}) vs native library", rtol=1e-5)


def epoch_log(path):
    import json
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_exe_aarch64(args):
    """nnc --target=aarch64-linux-gnu -o model: a training executable linked with
    aarch64-linux-gnu-gcc against the cross-built runtime (build/aarch64/libnnrt.a). fashion_mlp
    trains under qemu-aarch64 on 768 uncompressed images (3 epochs of 24 steps, validated on 256):
    every epoch's train and validation loss equal the native executable's within 1e-5 relative
    (the float sums differ in order: 32-byte NEON tiles and fused multiply-adds where the host
    uses its own vector width, so rounding, not arithmetic, separates them; measured 3e-7 at
    most). SGD with momentum, not the example's Adam: Adam divides by sqrt(v), so weights whose
    gradients are rounding noise take full-size steps whichever way the noise points, and two
    correct runs part about 30x per epoch (3e-9, 2e-5, 6e-4 measured);
    its checkpoint loads in the native executable, whose eval gives the loss qemu's eval does
    within 1e-5; predict under qemu (also of a --target-cpu=cortex-a72 executable) equals native
    predict of that checkpoint within 1e-5 relative; a gzip data file is an error saying to gunzip it (the cross runtime has no zlib).
    Skipped, saying so, without qemu-aarch64 or the cross compiler."""
    missing = [t for t in ("qemu-aarch64", "aarch64-linux-gnu-gcc") if not shutil.which(t)]
    if missing or not os.path.isdir("/usr/aarch64-linux-gnu"):
        print(f"SKIP: {', '.join(missing) or '/usr/aarch64-linux-gnu'} missing (Debian: qemu-user gcc-aarch64-linux-gnu "
              "libc6-dev-arm64-cross, which .ci/run installs)")
        sys.exit(SKIP)
    if os.environ.get("NNC_TEST_AARCH64_RUNTIME") == "0":
        print("SKIP: this build made no aarch64 runtime (configured with -DNNC_AARCH64_RUNTIME=OFF, or without the cross "
              "compiler when CMake ran)")
        sys.exit(SKIP)
    runtime = os.path.join(os.path.dirname(args.nnc), "aarch64", "libnnrt.a")
    check(os.path.exists(runtime), f"{runtime} was not built although the cross compiler is installed")
    qemu = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]
    source = os.path.join(EXAMPLES, "fashion_mlp.nn")
    native = os.path.join(args.work, "mlp_native")
    arm = os.path.join(args.work, "mlp_aarch64")
    run([args.nnc, source, "-o", native])
    run([args.nnc, source, "--target=aarch64-linux-gnu", "-o", arm])
    header = run(["readelf", "-h", arm]).stdout
    check("AArch64" in header, f"the --target=aarch64-linux-gnu executable is not AArch64 code:\n{header}")
    ip, lp = fashion_subset(args.work, 768, gz=False)
    vip, vlp = fashion_subset(args.work, 256, "test", gz=False)
    train = ["train", "--data", idx_spec(ip, lp), "--validate", idx_spec(vip, vlp), "--epochs", "3", "--threads", "2",
             "--optimizer", "sgd(lr=0.05, momentum=0.9)", "--quiet"]
    logs = {}
    for name, cmd in (("native", [native]), ("aarch64", [*qemu, arm])):
        log = os.path.join(args.work, f"{name}.jsonl")
        if os.path.exists(log):
            os.remove(log)
        run([*cmd, *train, "--log", log, "--save", os.path.join(args.work, f"{name}.safetensors")])
        logs[name] = epoch_log(log)
    check(len(logs["native"]) == len(logs["aarch64"]) == 3, f"epoch logs: {logs}")
    worst = 0.0
    for a, b in zip(logs["aarch64"], logs["native"]):
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy"):
            rel = abs(a[key] - b[key]) / max(abs(b[key]), 1e-12)
            worst = max(worst, rel)
            check(rel <= 1e-5, f"epoch {a['epoch']} {key}: aarch64 {a[key]!r}, native {b[key]!r} ({rel:.3g} relative > 1e-5)")
    print(f"loss curves (3 epochs): aarch64 vs native within {worst:.3g} relative; "
          f"train_loss {[round(e['train_loss'], 6) for e in logs['aarch64']]}")
    ckpt = os.path.join(args.work, "aarch64.safetensors")
    val = idx_spec(vip, vlp)

    def eval_loss(cmd):
        out = run([*cmd, "eval", "--load", ckpt, "--data", val]).stdout
        import re
        m = re.search(r"loss ([0-9.eE+-]+)", out)
        check(m, f"eval printed no loss:\n{out}")
        return float(m.group(1)), out.strip()

    (native_loss, native_out), (arm_loss, arm_out) = eval_loss([native]), eval_loss([*qemu, arm])
    print(f"native eval of the aarch64 checkpoint: {native_out}\nqemu eval: {arm_out}")
    check(abs(native_loss - arm_loss) <= 1e-5 * abs(arm_loss), f"eval loss: native {native_loss}, aarch64 {arm_loss}")
    arm_pred = run([*qemu, arm, "predict", "--load", ckpt, vip]).stdout.strip().split("\n")
    nat_pred = run([native, "predict", "--load", ckpt, vip]).stdout.strip().split("\n")
    check(arm_pred[0] == nat_pred[0] and len(arm_pred) == len(nat_pred) == 257, f"predict headers/rows differ: {arm_pred[:2]} {nat_pred[:2]}")
    to_array = lambda rows: np.array([[float(v) for v in r.split(",")[:10]] for r in rows[1:]])
    compare(to_array(arm_pred), to_array(nat_pred), "predict under qemu vs native predict (the aarch64 checkpoint)", rtol=1e-5,
            per_row=True)
    # --target-cpu for a training executable: cortex-a72's code, same predictions
    a72 = os.path.join(args.work, "mlp_a72")
    run([args.nnc, source, "--target=aarch64-linux-gnu", "--target-cpu=cortex-a72", "-o", a72])
    a72_pred = run([*qemu, a72, "predict", "--load", ckpt, vip]).stdout.strip().split("\n")
    compare(to_array(a72_pred), to_array(nat_pred), "predict of the cortex-a72 executable vs native predict", rtol=1e-5, per_row=True)
    gz_ip, gz_lp = fashion_subset(args.work, 100, gz=True)
    p = run([*qemu, arm, "train", "--data", idx_spec(gz_ip, gz_lp), "--validate", "none", "--epochs", "1"], expect=1)
    want = (f"error: {gz_ip}: the file is gzip-compressed, but this executable was built without zlib (a cross-compiled runtime); "
            "gunzip the file and give the uncompressed one")
    check(want in p.stderr, f"a .gz file under the aarch64 executable: expected\n  {want}\nin stderr:\n{p.stderr}")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
