#!/usr/bin/env python3
"""Writes fortunes_train.csv and fortunes_val.csv beside this script: a text classification data
set from Debian's `fortunes` package (/usr/share/games/fortunes): which of four category files a
fortune comes from. Columns: text (the fortune, newlines kept, quoted as CSV), label (0..3, the
category's number below), category (its name; the models ignore it).

Deterministic: the fortunes in file order; every fifth of each category (the 5th, 10th, ...) is
held out for validation, so both files have the categories in the same proportions. Fortunes over
1000 bytes (long poems and lists) are left out. The files are written to a temporary name and
renamed, so an interrupted run leaves no half-written file.

    python3 examples/data/make_fortunes.py [FORTUNES_DIR]      (.ci/setup runs it)
"""
import csv
import os
import sys

# Four categories of similar size (600-720 fortunes each) and distinct subjects.
CATEGORIES = ["politics", "science", "songs-poems", "work"]
MAX_BYTES = 1000


def fortunes(path):
    """The fortunes of a strfile source file: texts separated by lines holding only '%'."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    items, cur = [], []
    for line in text.split("\n"):
        if line == "%":
            items.append("\n".join(cur).strip())
            cur = []
        else:
            cur.append(line)
    items.append("\n".join(cur).strip())
    return [t for t in items if t and len(t.encode()) <= MAX_BYTES]


def write(path, rows):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label", "category"])
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/games/fortunes"
    here = os.path.dirname(os.path.abspath(__file__))
    train, val = [], []
    for label, name in enumerate(CATEGORIES):
        path = os.path.join(src, name)
        if not os.path.exists(path):
            sys.exit(f"make_fortunes.py: {path} is missing: apt-get install fortunes")
        for k, text in enumerate(fortunes(path)):
            (val if k % 5 == 4 else train).append([text, label, name])
    write(os.path.join(here, "fortunes_train.csv"), train)
    write(os.path.join(here, "fortunes_val.csv"), val)
    counts = [sum(1 for r in train if r[1] == c) for c in range(len(CATEGORIES))]
    print(f"fortunes: {len(train)} training and {len(val)} validation examples; training counts "
          + ", ".join(f"{n} {c}" for n, c in zip(counts, CATEGORIES)))


if __name__ == "__main__":
    main()
