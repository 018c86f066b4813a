#!/usr/bin/python3
"""End-to-end tests of `nnc compare` (CTest e2e.compare_*).

Usage: compare.py TEST --nnc PATH --work DIR

compare_table  compares designs on the Seattle weather CSV (examples/data) with 2 seeds and a -D
               sweep, and checks the table (CSV, Markdown, stdout) against the runs' own JSONL logs
               recomputed here, parameters against `nnc summary`, FLOPs against a hand count,
               identical curves and checkpoints for two designs identical in content, failed rows
               (a design that does not compile, one whose loss diverges) beside completed ones,
               the checkpoints (eval and resume), and the PNG/SVG plots (decoded here).
compare_usage  bad command lines: exact messages, exit status 1, nothing written.
"""
import argparse
import collections
import csv
import json
import math
import os
import re
import shutil
import statistics
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SEATTLE = os.path.normpath(os.path.join(HERE, "..", "..", "examples", "data", "seattle_weather.csv"))


sys.path.insert(0, HERE)
from e2e import Failure, check, run  # noqa: E402  (the suite's helpers)


def regression_design(name, body, metrics, optimizer="adam(lr=3e-3)", params=""):
    metric_lines = "".join(f"metric {m}(pred, temp_max)\n" for m in metrics)
    return (f"model {name}\n{params}"
            "input  features : float[5]\n"
            "target temp_max : float[1]\n"
            f"pred = features -> {body}\n"
            "loss   mse(pred, temp_max)\n"
            f"{metric_lines}"
            "train {\n"
            f"  data      = csv(\"{SEATTLE}\", target=\"temp_max\", standardize=true)\n"
            "  validate  = split(0.2)\n"
            f"  optimizer = {optimizer}\n"
            "  epochs    = 40\n"
            "  batch     = 32\n"
            "}\n")


DESIGNS = {
    "reg_a.nn": regression_design("reg_a", "dense(width) -> relu -> dense(1)", ["mae", "rmse"],
                                  params="param width = 32\n"),
    "reg_b.nn": regression_design("reg_b", "dense(8) -> tanh -> dense(8) -> relu -> dense(1)", ["mae"]),
    # Shape error: the prediction has 2 values, the target 1.
    "bad.nn": regression_design("bad", "dense(8) -> relu -> dense(2)", ["mae"]),
    # Diverges in the first epoch: the runtime stops with exit status 1.
    "nan.nn": regression_design("nan", "dense(8) -> relu -> dense(1)", ["mae"], optimizer="sgd(lr=1e30)"),
}
DESIGNS["reg_b_copy.nn"] = DESIGNS["reg_b.nn"]  # identical content, another file


# ---------------------------------------------------------------- logs and statistics

def read_log(path):
    rows = []
    with open(path) as f:
        for line in f:
            rows.append({k: (math.nan if v is None else float(v)) for k, v in json.loads(line).items()})
    return rows


def run_values(rows, metrics):
    """The per-run numbers the table aggregates, computed from the log rows."""
    out = {
        "seconds_per_epoch": statistics.fmean(r["seconds"] for r in rows),
        "final_train_loss": rows[-1]["train_loss"],
        "final_val_loss": rows[-1]["val_loss"],
        "best_val_loss": min(r["val_loss"] for r in rows),
    }
    for m in metrics:
        values = [r[f"val_{m}"] for r in rows]
        out[f"final_val_{m}"] = values[-1]
        out[f"best_val_{m}"] = max(values) if m == "accuracy" else min(values)
    return out


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------- image files

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def decode_png(path):
    """Checks the chunk structure and CRCs, inflates IDAT and undoes the row filters; returns
    (width, height, Counter of RGB pixels)."""
    data = open(path, "rb").read()
    check(data[:8] == PNG_SIGNATURE, f"{path}: not a PNG signature")
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        check(zlib.crc32(kind + body) == crc, f"{path}: bad CRC in chunk {kind}")
        chunks.append((kind, body))
        pos += 12 + length
    check(chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", f"{path}: IHDR/IEND misplaced")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    check(depth == 8 and colour in (2, 6) and interlace == 0, f"{path}: unexpected format {depth}/{colour}/{interlace}")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * bpp
    check(len(raw) == height * (stride + 1), f"{path}: {len(raw)} bytes of pixel data for {width}x{height}")
    pixels, prev = collections.Counter(), bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + (0, a, b, (a + b) // 2, paeth(a, b, c))[f]) & 255
        pixels.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, pixels


TAB10 = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def band_colour(c, alpha=0.18):
    """A tab10 colour at the band's opacity over the white background."""
    return tuple(round(255 + (v - 255) * alpha) for v in c)


def check_plots(out, drawn, legend_only=(), bands=()):
    """Series in `drawn` have curves: their colour (matplotlib's tab10, in table order) covers far
    more pixels than a legend entry, which is all that series in `legend_only` (failed rows) get.
    Series in `bands` (several seeds) have a translucent band (the seeds' min to max). The PNG
    is twice the SVG's size (high-density screens)."""
    width, height, pixels = decode_png(os.path.join(out, "curves.png"))
    check(width >= 800 and height >= 600, f"curves.png is {width}x{height}")
    count = [pixels[bytes(c)] for c in TAB10]
    legend = 4 * 60  # a 28x2.5 legend line at scale 2: at most 4 rows of 56 fully covered pixels
    for k in bands:
        near = sum(n for p, n in pixels.items()
                   if all(abs(a - b) <= 2 for a, b in zip(p, band_colour(TAB10[k]))))
        check(near > 400, f"curves.png: series {k} has no band ({near} pixels of its band colour)")
    for k in legend_only:
        check(0 < count[k] <= legend, f"curves.png: failed series {k} has {count[k]} pixels of its colour: {count}")
    for k in drawn:
        check(count[k] > 3 * legend, f"curves.png: series {k} has only {count[k]} pixels of its colour: {count}")
    root = ET.parse(os.path.join(out, "curves.svg")).getroot()
    check(root.tag == "{http://www.w3.org/2000/svg}svg", f"curves.svg: root is {root.tag}")
    check(root.get("viewBox") == f"0 0 {width // 2} {height // 2}", f"curves.svg: viewBox {root.get('viewBox')}, PNG {width}x{height}")
    strokes = {e.get("style", "") for e in root.iter() if "stroke:rgb" in e.get("style", "")}
    colours = {re.search(r"stroke:(rgb\([^)]*\))", s).group(1) for s in strokes}
    series = len(drawn) + len(legend_only)
    check(len(colours) >= series, f"curves.svg: {len(colours)} stroke colours for {series} series")


# ---------------------------------------------------------------- tests

def test_compare_table(args):
    work = os.path.join(args.work, "compare_table")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    for name, text in DESIGNS.items():
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    cmd = [args.nnc, "compare", "reg_a.nn", "reg_b.nn", "reg_b_copy.nn", "bad.nn", "nan.nn",
           "-D", "width=4,16", "--seeds", "2", "--epochs", "4", "--out", "out"]
    p = run(cmd, expect=1, cwd=work)
    out = os.path.join(work, "out")
    check("run 10 of 10" in p.stderr, f"no overall progress on stderr:\n{p.stderr}")

    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    labels = [(r["design"], r["overrides"]) for r in rows]
    check(labels == [("reg_a", "width=4"), ("reg_a", "width=16"), ("reg_b", ""), ("reg_b_copy", ""),
                     ("bad", ""), ("nan", "")], f"rows: {labels}")
    by = {(r["design"], r["overrides"]): r for r in rows}

    # Failures are rows; the others completed.
    bad, nan = by[("bad", "")], by[("nan", "")]
    check(bad["status"] == "failed" and bad["error"] ==
          "bad.nn:5:12: error: mse: the prediction has shape [2] but the target 'temp_max' has shape [1]",
          f"bad row: {bad}")
    check(nan["status"] == "failed" and nan["seeds_ok"] == "0" and
          re.fullmatch(r"seed 1: loss became (NaN|infinite) at epoch 1, step \d+ \(batch of 32 examples\)", nan["error"]),
          f"nan row: {nan}")
    check(all(by[k]["status"] == "ok" and by[k]["seeds_ok"] == "2" for k in labels[:4]), "a good design failed")

    # Parameters as `nnc summary` counts them; forward FLOPs by hand (multiply-add = 2, bias,
    # relu/tanh 1 per element, mse 3 per prediction value).
    for (design, overrides), flops in {("reg_a", "width=4"): 14 * 4 + 4, ("reg_a", "width=16"): 14 * 16 + 4,
                                       ("reg_b", ""): 2 * 5 * 8 + 8 + 8 + 2 * 8 * 8 + 8 + 8 + 2 * 8 + 1 + 3}.items():
        extra = ["-D", overrides] if overrides else []
        summary = run([args.nnc, "summary", f"{design}.nn", *extra], cwd=work).stdout
        params = re.search(r"^parameters:\s+(\d+)", summary, re.M).group(1)
        check(by[(design, overrides)]["parameters"] == params, f"{design} {overrides}: parameters {by[(design, overrides)]['parameters']} != {params}")
        check(int(by[(design, overrides)]["flops_forward_per_example"]) == flops,
              f"{design} {overrides}: FLOPs {by[(design, overrides)]['flops_forward_per_example']} != {flops}")

    # Every number of the table from the runs' logs.
    slugs = {("reg_a", "width=4"): "reg_a-width=4", ("reg_a", "width=16"): "reg_a-width=16",
             ("reg_b", ""): "reg_b", ("reg_b_copy", ""): "reg_b_copy"}
    metrics = {"reg_a": ["mae", "rmse"], "reg_b": ["mae"], "reg_b_copy": ["mae"]}
    logs = {}
    for key, slug in slugs.items():
        per_seed = []
        for seed in (1, 2):
            run_dir = os.path.join(out, "runs", slug, f"seed{seed}")
            rows_ = read_log(os.path.join(run_dir, "log.jsonl"))
            check(len(rows_) == 4, f"{slug} seed {seed}: {len(rows_)} epochs logged, expected 4 (--epochs 4)")
            check(os.path.getsize(os.path.join(run_dir, "model.safetensors")) > 0, f"{slug}: no checkpoint")
            per_seed.append(run_values(rows_, metrics[key[0]]))
            logs[(slug, seed)] = rows_
        for name in per_seed[0]:
            values = [v[name] for v in per_seed]
            want_mean, want_std = statistics.fmean(values), statistics.stdev(values)
            got_mean, got_std = float(by[key][f"{name}_mean"]), float(by[key][f"{name}_std"])
            check(close(got_mean, want_mean) and close(got_std, want_std),
                  f"{slug} {name}: table {got_mean} ± {got_std}, logs {want_mean} ± {want_std}")
        if key[0] != "reg_a":
            check(by[key]["final_val_rmse_mean"] == "", f"{slug} has no rmse metric, yet the cell is filled")
    # Seeds reach the runs; equal designs with equal seeds give equal curves and checkpoints.
    curve = lambda rows_: [(r["train_loss"], r["val_loss"], r["val_mae"]) for r in rows_]
    check(curve(logs[("reg_b", 1)]) != curve(logs[("reg_b", 2)]), "seeds 1 and 2 gave the same curve")
    for seed in (1, 2):
        check(curve(logs[("reg_b", seed)]) == curve(logs[("reg_b_copy", seed)]),
              f"seed {seed}: identical designs gave different curves")
        a = open(os.path.join(out, "runs", "reg_b", f"seed{seed}", "model.safetensors"), "rb").read()
        b = open(os.path.join(out, "runs", "reg_b_copy", f"seed{seed}", "model.safetensors"), "rb").read()
        check(a == b, f"seed {seed}: identical designs gave different checkpoints")

    # A run can be inspected and resumed from what compare kept.
    run_dir = os.path.join(out, "runs", "reg_a-width=16")
    exe, ckpt = os.path.join(run_dir, "reg_a"), os.path.join(run_dir, "seed1", "model.safetensors")
    ev = run([exe, "eval", "--load", ckpt], cwd=work).stdout
    loss = float(re.search(r"loss ([0-9.]+)", ev).group(1))
    check(abs(loss - logs[("reg_a-width=16", 1)][-1]["val_loss"]) < 1e-5 * max(1, loss), f"eval: {ev}")
    resumed = run([exe, "train", "--load", ckpt, "--epochs", "5", "--quiet", "--save", os.path.join(work, "resumed.safetensors")],
                  cwd=work).stdout
    check(re.search(r"^epoch 5/5 ", resumed, re.M), f"resume did not train epoch 5:\n{resumed}")

    # The Markdown and stdout tables carry the same rows.
    md = open(os.path.join(out, "results.md")).read().splitlines()
    check(len(md) == 2 + 6 and md[1].startswith("|---") and all(line.startswith("| ") for line in md[:1] + md[2:]),
          f"results.md:\n{md}")
    # nan.nn trains with another optimizer: the train setting that differs is a column after the
    # overrides (empty for the design that does not compile).
    header = [c.strip() for c in md[0].strip("|").split(" | ")]
    check(header[:4] == ["design", "overrides", "optimizer", "params"], f"results.md header {header}")
    adam = "adam(lr=0.003, beta1=0.9, beta2=0.999, eps=1e-08, weight_decay=0)"
    check([by[k]["train_optimizer"] for k in labels] == [adam] * 4 + ["", "sgd(lr=1e+30, momentum=0, nesterov=false, weight_decay=0)"],
          f"train_optimizer column: {[by[k]['train_optimizer'] for k in labels]}")
    for (design, overrides), line in zip(labels, md[2:]):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        check(cells[0] == design and cells[1] == (overrides or "-"), f"results.md row {line}")
        mean = float(by[(design, overrides)]["final_val_loss_mean"] or "nan")
        cell = cells[header.index("final val loss")]
        if not math.isnan(mean):
            check(cell.startswith(f"{mean:.4f} ± "), f"results.md final val loss {cell} vs {mean}")
    table = p.stdout.strip().splitlines()
    check(len(table) == 7 and table[0].split()[:4] == ["design", "overrides", "optimizer", "params"], f"stdout:\n{p.stdout}")
    check("failed: bad.nn:5:12: error:" in table[5] and "failed: seed 1: loss became" in table[6], f"stdout:\n{p.stdout}")

    # Series 2 (reg_b) is drawn, but reg_b_copy's identical curves cover it.
    check_plots(out, drawn=(0, 1, 3), legend_only=(4, 5), bands=(0, 1))  # 3 (reg_b_copy) lies on 2's band

    # Without validation data the table's validation cells stay empty and the plots show the
    # training curves.
    p = run([args.nnc, "compare", "reg_b.nn", "--seeds", "1", "--epochs", "2", "--validate", "none",
             "--out", "out_noval"], cwd=work)
    with open(os.path.join(work, "out_noval", "results.csv")) as f:
        (row,) = list(csv.DictReader(f))
    log = read_log(os.path.join(work, "out_noval", "runs", "reg_b", "seed1", "log.jsonl"))
    check(row["status"] == "ok" and row["final_val_loss_mean"] == "" and row["best_val_mae_mean"] == "" and
          float(row["final_train_loss_mean"]) == log[-1]["train_loss"], f"--validate none: {row}")
    check_plots(os.path.join(work, "out_noval"), drawn=(0,))


def test_compare_usage(args):
    work = os.path.join(args.work, "compare_usage")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "reg_a.nn"), "w") as f:
        f.write(DESIGNS["reg_a.nn"])
    cases = [
        ([], "nnc compare: error: no designs; give one or more .nn files"),
        (["missing.nn"], "nnc: error: cannot open 'missing.nn': No such file or directory"),
        # not a regular file (a pipe from <(...) reads empty the second time): refused, not a row
        (["reg_a.nn", "/dev/null"], "nnc compare: error: '/dev/null' is not a regular file; nnc compare reads each "
                                    "design several times, so save it to a .nn file first"),
        (["reg_a.nn", "--seeds", "0"], "nnc compare: error: --seeds needs a whole number from 1 to 1000, not '0'"),
        (["reg_a.nn", "--seeds=two"], "nnc compare: error: --seeds needs a whole number from 1 to 1000, not 'two'"),
        (["reg_a.nn", "--epochs", "-3"], "nnc compare: error: --epochs needs a whole number from 1 to 1000000, not '-3'"),
        (["reg_a.nn", "--jobs"], "nnc compare: error: --jobs needs a value"),
        (["reg_a.nn", "--data="], "nnc compare: error: --data needs a data spec, e.g. --data 'csv(\"train.csv\", target=\"y\")'"),
        (["reg_a.nn", "--validate", ""], "nnc compare: error: --validate needs a data spec, e.g. --validate 'split(0.1)'"),
        (["reg_a.nn", "-D", "width"], "nnc compare: error: -D needs NAME=VALUE or NAME=V1,V2,..., e.g. -D width=64,128, not 'width'"),
        (["reg_a.nn", "-Dwidth=4,,8"], "nnc compare: error: -D width: empty value in '4,,8' (write -D width=V1,V2,...)"),
        (["reg_a.nn", "-D", "width=4,4"], "nnc compare: error: -D width: the value '4' is listed twice"),
        (["reg_a.nn", "-D", "width=4", "-D", "width=8"],
         "nnc compare: error: -D width is given twice; list the values once: -D width=V1,V2,..."),
        (["reg_a.nn", "-D", "depth=2,3"], "nnc compare: error: -D depth: no design declares `param depth`"),
        (["reg_a.nn", "-D", "widht=8"],
         "nnc compare: error: -D widht: no design declares `param widht`; did you mean 'width'?"),
        (["reg_a.nn", "--frobnicate"], "nnc compare: error: unknown option '--frobnicate'"),
        (["reg_a.nn", "--out", "reg_a.nn"], "nnc compare: error: 'reg_a.nn' exists and is not a directory; choose another --out"),
    ]
    for extra, message in cases:
        p = run([args.nnc, "compare", *extra], expect=1, cwd=work)
        first = p.stderr.splitlines()[0] if p.stderr else ""
        check(first == message, f"nnc compare {' '.join(extra)}:\n  got  {first!r}\n  want {message!r}")
        check(p.stdout == "", f"nnc compare {' '.join(extra)} printed on stdout: {p.stdout!r}")
        check(sorted(os.listdir(work)) == ["reg_a.nn"], f"nnc compare {' '.join(extra)} left files: {os.listdir(work)}")
    # A sweep over a design with a syntax error: the error says why its param is not found.
    with open(os.path.join(work, "syntax.nn"), "w") as f:
        f.write(DESIGNS["reg_a.nn"].replace("dense(width) ->", "dense(width) -> ->"))
    p = run([args.nnc, "compare", "syntax.nn", "-D", "width=4,8"], expect=1, cwd=work)
    want = ("nnc compare: error: -D width: no design declares `param width` (syntax.nn does not parse, so its params "
            "are unknown; fix it first)")
    check(p.stderr.splitlines()[-1:] == [want], f"sweep over a design that does not parse:\n{p.stderr}")
    check(sorted(os.listdir(work)) == ["reg_a.nn", "syntax.nn"], f"a failed sweep left files: {os.listdir(work)}")
    for extra, message in [([], "nnc diff: error: needs two .nn files, e.g. nnc diff a.nn b.nn"),
                           (["reg_a.nn"], "nnc diff: error: needs two .nn files, e.g. nnc diff a.nn b.nn"),
                           (["reg_a.nn", "missing.nn"], "nnc: error: cannot open 'missing.nn': No such file or directory"),
                           (["reg_a.nn", "reg_a.nn", "reg_a.nn"],
                            "nnc diff: error: more than two designs ('reg_a.nn'); diff compares exactly two"),
                           (["-x", "reg_a.nn"], "nnc diff: error: unknown option '-x'")]:
        p = run([args.nnc, "diff", *extra], expect=1, cwd=work)
        first = p.stderr.splitlines()[0] if p.stderr else ""
        check(first == message, f"nnc diff {' '.join(extra)}:\n  got  {first!r}\n  want {message!r}")
    # A design that warns (an unused binding): diff shows the warning and goes on, -w silences
    # it, -Werror fails like nnc itself.
    with open(os.path.join(work, "warns.nn"), "w") as f:
        f.write(DESIGNS["reg_a.nn"].replace("\nloss", "\nunused = features -> dense(3)\nloss", 1))
    warning = "warns.nn:6:1: warning: 'unused' is never used: its value reaches neither the loss, a metric nor the output"
    p = run([args.nnc, "diff", "reg_a.nn", "warns.nn"], expect=0, cwd=work)
    check(p.stderr.splitlines()[:1] == [warning] and "dense" in p.stdout, f"diff of a design that warns:\n{p.stderr}")
    p = run([args.nnc, "diff", "-w", "reg_a.nn", "warns.nn"], expect=0, cwd=work)
    check(p.stderr == "", f"diff -w: {p.stderr!r}")
    p = run([args.nnc, "diff", "-Werror", "reg_a.nn", "warns.nn"], expect=1, cwd=work)
    check(p.stderr.splitlines()[:1] == [warning.replace("warning:", "error:") + " [-Werror]"], f"diff -Werror: {p.stderr!r}")
    p = run([args.nnc, "compare", "-Werror", "warns.nn", "--seeds", "1", "--epochs", "1", "--out", "werror-out"],
            expect=1, cwd=work)
    check("nnc compare: warns does not compile: " in p.stderr and "[-Werror]" in p.stderr, f"compare -Werror:\n{p.stderr}")


def test_compare_odd_inputs(args):
    """Inputs at the edges that must still give a complete comparison: a -D value longer than a
    file name may be (the run directory's name is shortened; the table keeps the whole value); a
    design whose name is that of a run directory (seed1.nn)."""
    work = os.path.join(args.work, "compare_odd_inputs")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "reg_a.nn"), "w") as f:
        f.write(DESIGNS["reg_a.nn"])
    long_value = "0" * 300 + "8"  # the number 8, written in 301 characters
    p = run([args.nnc, "compare", "reg_a.nn", "-D", f"width=8,{long_value}", "--seeds", "1", "--epochs", "1",
             "--out", "out"], expect=0, cwd=work)
    runs = sorted(os.listdir(os.path.join(work, "out", "runs")))
    check(len(runs) == 2 and all(len(r) <= 255 for r in runs), f"run directories: {[len(r) for r in runs]}")
    with open(os.path.join(work, "out", "results.csv")) as f:
        rows = list(csv.DictReader(f))
    check([r["overrides"] for r in rows] == ["width=8", f"width={long_value}"],
          f"overrides column: {[r['overrides'][:40] for r in rows]}")
    check(rows[0]["parameters"] == rows[1]["parameters"] == "57", f"parameters: {[r['parameters'] for r in rows]}")
    check(rows[0]["final_train_loss_mean"] == rows[1]["final_train_loss_mean"],
          "width=8 and width=000...8 trained differently")
    print(f"-D value of {len(long_value)} characters: run directories of {[len(r) for r in runs]} characters")
    # A design named like a run directory (seed1.nn): its executable must not take seed1/'s place.
    with open(os.path.join(work, "seed1.nn"), "w") as f:
        f.write(DESIGNS["reg_a.nn"])
    run([args.nnc, "compare", "seed1.nn", "--seeds", "2", "--epochs", "1", "--out", "out_seed"], expect=0, cwd=work)
    for seed in (1, 2):
        ckpt = os.path.join(work, "out_seed", "runs", "seed1", f"seed{seed}", "model.safetensors")
        check(os.path.isfile(ckpt), f"design seed1.nn: no checkpoint {ckpt}")
    print("design seed1.nn: both seeds trained")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test")
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    args.nnc = os.path.abspath(args.nnc)
    args.work = os.path.abspath(args.work)
    try:
        globals()["test_" + args.test](args)
    except Failure as e:
        print(f"FAIL {args.test}: {e}", file=sys.stderr)
        return 1
    print(f"PASS {args.test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
