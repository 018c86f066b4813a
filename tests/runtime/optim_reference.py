#!/usr/bin/python3
"""Reference values for test_unit.c's optimizer checks.

An independent float64 numpy implementation of the update rules as PyTorch documents them
(torch.optim.SGD/Adam/AdamW/RMSprop), run for three steps from the same start and gradients as
test_unit.c. Without arguments it prints the C initializers used there; with
`--check TEST_UNIT` it runs `TEST_UNIT optim-dump` and compares the runtime's float32 results.
Exit 77 (CTest's skip) when numpy is missing.
"""
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    print("numpy is not available: skipping")
    sys.exit(77)

p0 = np.array([0.5, -1.25, 2.0, 0.0])
gs = [np.array([0.1, -0.2, 0.3, -0.4]), np.array([-0.05, 0.15, 0.25, 1.0]),
      np.array([0.3, 0.0, -0.1, 0.2])]


def sgd(lr, mu, nesterov, wd):
    p, b = p0.copy(), None
    for g in gs:
        d = g + wd * p
        if mu:
            b = d.copy() if b is None else mu * b + d  # first step: buf = d (PyTorch)
            d = d + mu * b if nesterov else b
        p = p - lr * d
    return p


def adam(lr, b1, b2, eps, wd, decoupled):
    p, m, v = p0.copy(), np.zeros(4), np.zeros(4)
    for t, g in enumerate(gs, 1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def rmsprop(lr, alpha, eps, wd, mu):
    p, v, b = p0.copy(), np.zeros(4), np.zeros(4)
    for g in gs:
        g = g + wd * p
        v = alpha * v + (1 - alpha) * g * g
        a = np.sqrt(v) + eps
        if mu:
            b = mu * b + g / a
            p = p - lr * b
        else:
            p = p - lr * g / a
    return p


cases = [
    ("sgd(lr=0.1, momentum=0.9, weight_decay=0.01)", sgd(0.1, 0.9, False, 0.01)),
    ("sgd(lr=0.1, momentum=0.9, nesterov=true)", sgd(0.1, 0.9, True, 0)),
    ("sgd(0.1)", sgd(0.1, 0, False, 0)),
    ("adam(lr=0.01, weight_decay=0.1)", adam(0.01, 0.9, 0.999, 1e-8, 0.1, False)),
    ("adamw(lr=0.01, weight_decay=0.1)", adam(0.01, 0.9, 0.999, 1e-8, 0.1, True)),
    ("adam(lr=0.1, beta1=0.3, beta2=0.5, eps=1e-3)", adam(0.1, 0.3, 0.5, 1e-3, 0, False)),
    ("rmsprop(lr=0.01, alpha=0.9)", rmsprop(0.01, 0.9, 1e-8, 0, 0)),
    ("rmsprop(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.1)", rmsprop(0.01, 0.9, 1e-8, 0.1, 0.5)),
]
if len(sys.argv) == 3 and sys.argv[1] == "--check":
    out = subprocess.run([sys.argv[2], "optim-dump"], check=True, capture_output=True, text=True)
    got = dict(line.split("|") for line in out.stdout.splitlines())
    bad = 0
    for spec, p in cases:
        q = np.array([float(v) for v in got[spec].split()])
        err = np.abs(q - p) / (1 + np.abs(p))
        status = "ok" if err.max() <= 2e-6 else "MISMATCH"
        bad += status != "ok"
        print("%-62s max rel err %.2e  %s" % (spec, err.max(), status))
    sys.exit(1 if bad else 0)
for spec, p in cases:
    print('{"%s",\n {%s}},' % (spec.replace('"', '\\"'), ", ".join("%.17g" % x for x in p)))
