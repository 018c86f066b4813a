"""How long `nnc lsp` takes to answer a change: for each example, the time from sending
textDocument/didChange (the whole text, as editors with full sync do) to receiving its
publishDiagnostics, and the time of a hover request, over many edits.

  /usr/bin/python3 bench/lsp_bench.py --nnc build/nnc [--edits 200]

The edits alternate between the example as it is and with one name misspelt (an error, then its
fix), so both paths are measured: the full front end (parse + sema, shapes, warnings) and the
early stop. The target is under 50 ms per change (issue: "Responses to didChange arrive in under
50 ms for the example models")."""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lsp"))
from lsp_client import Client  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--edits", type=int, default=200)
    a = ap.parse_args()
    examples = os.path.join(HERE, "..", "examples")
    c = Client(os.path.abspath(a.nnc))
    c.initialize()
    print("%-22s %8s %10s %10s %10s %10s" % ("example", "bytes", "change p50", "change p99", "change max", "hover p50"))
    worst = 0.0
    for name in sorted(os.listdir(examples)):
        if not name.endswith(".nn"):
            continue
        text = open(os.path.join(examples, name)).read()
        uri = "file:///bench/" + name
        c.open(uri, text)
        # misspell the first binding's first use after its definition: an error, then the fix
        broken = text.replace("-> dense(", "-> dens(", 1)
        changes, hovers = [], []
        lines = text.split("\n")
        hover_line = next(i for i, l in enumerate(lines) if "->" in l)
        hover_col = lines[hover_line].index("->") + 4
        for k in range(a.edits):
            t0 = time.perf_counter()
            c.change(uri, broken if k % 2 else text, k + 2)
            changes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            c.at("textDocument/hover", uri, hover_line, hover_col)
            hovers.append(time.perf_counter() - t0)
        changes.sort()
        p50, p99, mx = changes[len(changes) // 2], changes[int(len(changes) * 0.99) - 1], changes[-1]
        worst = max(worst, p99)
        print("%-22s %8d %8.2fms %8.2fms %8.2fms %8.2fms" % (name, len(text), p50 * 1e3, p99 * 1e3, mx * 1e3, statistics.median(hovers) * 1e3))
    c.close()
    print("\nworst p99 over the examples: %.2f ms (target: under 50 ms)" % (worst * 1e3))


if __name__ == "__main__":
    main()
