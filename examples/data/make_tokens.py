#!/usr/bin/python3
"""Regenerates tokens_train.csv and tokens_val.csv: synthetic "reviews" of 16 token ids from a
vocabulary of 64 (0 is padding). Ids 1-12 are positive words, 13-24 negative, the rest neutral;
the label is 1 when positive words outnumber negative ones. Deterministic (fixed seed)."""
import os
import random

def write(path, count, rng):
    with open(path, "w") as f:
        f.write(",".join(f"t{i}" for i in range(16)) + ",label\n")
        for _ in range(count):
            length = rng.randint(6, 16)
            ids = [rng.randint(1, 63) for _ in range(length)] + [0] * (16 - length)
            pos = sum(1 for t in ids if 1 <= t <= 12)
            neg = sum(1 for t in ids if 13 <= t <= 24)
            if pos == neg:  # no ties: nudge one word so every example has a clear answer
                ids[0] = rng.choice([rng.randint(1, 12), rng.randint(13, 24)])
                pos = sum(1 for t in ids if 1 <= t <= 12)
                neg = sum(1 for t in ids if 13 <= t <= 24)
            if pos == neg:
                ids[0] = 1
                pos += 1
            f.write(",".join(map(str, ids)) + f",{1 if pos > neg else 0}\n")

here = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(2026)
write(os.path.join(here, "tokens_train.csv"), 4000, rng)
write(os.path.join(here, "tokens_val.csv"), 1000, rng)
