#!/usr/bin/python3
"""End-to-end tests of designs as parameters (CTest e2e.params_*).

Usage: params.py TEST --nnc PATH --work DIR

sweep_table       one `nnc compare` over examples/fashion_resnet_sweep.nn sweeps depth x activation
                  (3 x 3, 2 seeds, a small Fashion-MNIST subset, one short epoch): 9 rows in sweep
                  order, every run trained, parameters equal to `nnc summary` of the written-out
                  equivalents (no param, no repeat) and to a hand count; a misspelt -D name or
                  value is refused before anything runs, with the right one suggested.
repeat_weights    repeat(3, res, 64) and the three instances written out train to identical weights.
compare_settings  `nnc compare -D` of a param the train block uses shows the train settings that
                  differ as table columns (text, Markdown, CSV).
"""
import csv
import os
import re
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SWEEP = os.path.join(ROOT, "examples", "fashion_resnet_sweep.nn")
INPUTS = os.path.join(ROOT, "tests", "lit", "params", "inputs")

sys.path.insert(0, HERE)
from e2e import check, fashion_subset, idx_spec, read_safetensors, run, run_tests  # noqa: E402

DEPTHS = [1, 2, 4]
ACTIVATIONS = ["relu", "gelu", "silu"]


def written_out(source, depth, act):
    """The sweep design with depth and act written out by hand: no op-valued param, no repeat."""
    text = re.sub(r"^param (depth|act) .*\n", "", source, flags=re.M)
    text = text.replace("-> act", f"-> {act}")
    blocks = " -> ".join(["res(width)"] * depth)
    text = text.replace("-> repeat(depth, res, width)", f"-> {blocks}" if depth else "")
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    check("repeat" not in code and "act" not in re.findall(r"\w+", code), "a param is left in the written-out design")
    return text


def test_sweep_table(args):
    ip, lp = fashion_subset(args.work, 256)
    vip, vlp = fashion_subset(args.work, 128, "test")
    out = os.path.join(args.work, "out")
    cmd = [args.nnc, "compare", SWEEP, "-D", "depth=" + ",".join(map(str, DEPTHS)), "-D", "act=" + ",".join(ACTIVATIONS),
           "-D", "width=8", "--seeds", "2", "--epochs", "1", "--batch", "32", "-O0",
           "--data", idx_spec(ip, lp), "--validate", idx_spec(vip, vlp), "--out", out]
    start = time.monotonic()
    p = run(cmd, cwd=args.work)
    print(f"nnc compare, 9 designs x 2 seeds: {time.monotonic() - start:.1f} s")
    check("run 18 of 18" in p.stderr, f"no progress for 18 runs:\n{p.stderr}")
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    want = [f"depth={d} act={a} width=8" for d in DEPTHS for a in ACTIVATIONS]  # the last -D varies fastest
    got = [r["overrides"] for r in rows]
    check(got == want, f"rows {got}, expected {want}")
    check(all(r["design"] == "fashion_resnet_sweep" and r["status"] == "ok" and r["seeds_ok"] == "2" for r in rows),
          f"a run failed: {[(r['overrides'], r['status'], r['error']) for r in rows]}")
    # The train settings are alike (the same file), so no settings columns.
    check(not any(k.startswith("train_") for k in rows[0]), f"unexpected settings columns: {list(rows[0])}")
    source = open(SWEEP).read()
    for r in rows:
        d, a = int(re.search(r"depth=(\d+)", r["overrides"]).group(1)), re.search(r"act=(\w+)", r["overrides"]).group(1)
        path = os.path.join(args.work, f"written_{d}_{a}.nn")
        with open(path, "w") as f:
            f.write(written_out(source, d, a))
        summary = run([args.nnc, "summary", path, "-D", "width=8"]).stdout
        params = int(re.search(r"^parameters:\s+(\d+)", summary, re.M).group(1))
        check(re.search(rf"^-\s+{a}\s", summary, re.M), f"{path}: no {a} in its summary")
        check(int(r["parameters"]) == params, f"{r['overrides']}: {r['parameters']} parameters, summary of {path}: {params}")
        # By hand, width 8: the stem conv 8*1*9 and its batchnorm 2*8, the head 8*10+10, and per
        # block two convs 8*8*9 and two batchnorms 2*8.
        hand = 8 * 9 + 16 + 90 + d * (2 * 8 * 8 * 9 + 2 * 16)
        check(params == hand, f"{path}: {params} parameters, by hand {hand}")
        for seed in (1, 2):
            log = os.path.join(out, "runs", f"fashion_resnet_sweep-depth={d}-act={a}-width=8", f"seed{seed}", "log.jsonl")
            check(os.path.exists(log) and len(open(log).read().splitlines()) == 1, f"{log}: not one epoch logged")
    table = p.stdout
    check(sum(1 for line in table.splitlines() if line.startswith("fashion_resnet_sweep")) == 9,
          f"the printed table has not 9 rows:\n{table}")
    # A misspelt param gets the right one suggested, and nothing is run.
    bad = run([args.nnc, "compare", SWEEP, "-D", "detph=1,2", "--out", os.path.join(args.work, "bad")], expect=1)
    check(bad.stderr.strip() == "nnc compare: error: -D detph: no design declares `param detph`; did you mean 'depth'?",
          f"misspelt -D: {bad.stderr}")
    check(not os.path.exists(os.path.join(args.work, "bad")), "a refused comparison wrote its directory")
    # So is a value the param cannot take, with the op it may have meant.
    bad = run([args.nnc, "compare", SWEEP, "-D", "act=relu,gleu", "--out", os.path.join(args.work, "bad")], expect=1)
    check(bad.stderr.strip() == f"nnc compare: error: {SWEEP}: -D act=gleu: param 'act' names an operation or block, and "
          "'gleu' is neither; did you mean 'gelu'?", f"-D act=gleu: {bad.stderr}")
    check(not os.path.exists(os.path.join(args.work, "bad")), "a refused comparison wrote its directory")


def random_classes(n, features, classes, seed):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n, features))
    ys = rng.integers(0, classes, size=n)
    return xs, ys


def test_repeat_weights(args):
    xs, ys = random_classes(96, 64, 3, 7)
    data = os.path.join(args.work, "data.csv")
    with open(data, "w") as f:
        f.write(",".join([f"x{i}" for i in range(64)] + ["y"]) + "\n")
        for x, y in zip(xs, ys):
            f.write(",".join(f"{v:.6f}" for v in x) + f",{y}\n")
    spec = f'csv("{data}", target="y")'
    weights = {}
    for name in ("repeat3", "written_out3"):
        exe = os.path.join(args.work, name)
        run([args.nnc, os.path.join(INPUTS, name + ".nn"), "-o", exe])
        ckpt = os.path.join(args.work, name + ".safetensors")
        run([exe, "train", "--data", spec, "--epochs", "2", "--batch", "16", "--seed", "3", "--save", ckpt, "--quiet"])
        weights[name], _ = read_safetensors(ckpt)
    a, b = weights["repeat3"], weights["written_out3"]
    check(sorted(a) == sorted(b), f"tensor names differ: {sorted(a)} vs {sorted(b)}")
    check("res2.dense1.weight" in a, f"no third instance: {sorted(a)}")
    for name in a:
        check(np.array_equal(a[name], b[name]), f"{name} differs after training")
    # Training moved them: two untouched initializations would prove less.
    check(not np.allclose(a["res0.dense0.weight"], 0) and float(np.std(a["dense0.bias"])) > 0, "the weights did not train")
    print(f"{len(a)} tensors identical after 2 epochs")


def test_compare_settings(args):
    xs, ys = random_classes(64, 4, 3, 11)
    data = os.path.join(args.work, "data.csv")
    with open(data, "w") as f:
        f.write("a,b,c,d,y\n")
        for x, y in zip(xs, ys):
            f.write(",".join(f"{v:.6f}" for v in x) + f",{y}\n")
    design = os.path.join(args.work, "train_params.nn")
    with open(design, "w") as f:
        f.write(open(os.path.join(INPUTS, "train_params.nn")).read().replace('"data.csv"', f'"{data}"'))
    out = os.path.join(args.work, "out")
    p = run([args.nnc, "compare", design, "-D", "lr=0.001,0.01", "-D", "epochs=1,2", "--seeds", "1", "--out", out])
    check("the designs' train settings differ (columns of the table): optimizer, epochs" in p.stderr,
          f"no note on the differing settings:\n{p.stderr}")
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    adam = "adam(lr={}, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0)"
    got = [(r["overrides"], r["train_optimizer"], r["train_epochs"]) for r in rows]
    want = [(f"lr={lr} epochs={e}", adam.format(lr), str(e)) for lr in ("0.001", "0.01") for e in (1, 2)]
    check(got == want, f"settings columns {got}, expected {want}")
    header = p.stdout.strip().splitlines()[0].split()
    check(header[:4] == ["design", "overrides", "optimizer", "epochs"], f"table header {header}")
    md = open(os.path.join(out, "results.md")).read().splitlines()
    check(md[0].startswith("| design | overrides | optimizer | epochs | params "), f"Markdown header {md[0]}")
    check(md[1].startswith("|---|---|---|---|---:"), f"Markdown alignment {md[1]}")
    # --epochs makes every run train alike: then epochs is no column.
    p = run([args.nnc, "compare", design, "-D", "lr=0.001,0.01", "-D", "epochs=1,2", "--epochs", "1", "--seeds", "1",
             "--out", out])
    check("differ (columns of the table): optimizer\n" in p.stderr, f"epochs still reported:\n{p.stderr}")


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    sys.exit(run_tests(TESTS))
