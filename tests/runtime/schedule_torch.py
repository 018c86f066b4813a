#!/usr/bin/python3
"""Per-step learning-rate schedules against PyTorch, step by step, and the `lr` of training logs.

    schedule_torch.py [--log-only] SCHEDULE_DUMP FIXTURE WORKDIR

SCHEDULE_DUMP prints the rate schedule.c gives every optimizer step of a run. They must equal,
within 1e-7 at every step:
  - cosine(warmup=W): torch.optim.lr_scheduler.LambdaLR with the documented formula, step s of S
    per epoch at epoch t = s/S:  t < W: min(1, (s+1)/(W S));  else (1 + cos(pi (t-W)/(E-W)))/2;
  - onecycle(max_lr, pct, ...): torch.optim.lr_scheduler.OneCycleLR(max_lr, total_steps=E S,
    pct_start=pct, anneal_strategy="cos", cycle_momentum=False, three_phase=False).
The rates are read from the optimizer before each optimizer.step(), as a training loop uses them.
Without torch those comparisons exit 77 (skipped); unit.schedule checks hand-derived rates either
way. --log-only (no torch needed): the `lr` a training log gives for each epoch is the rate of
that epoch's last step, exactly, and the epoch line shows it.
"""
import json
import math
import os
import subprocess
import sys

args = sys.argv[1:]
log_only = args[0] == "--log-only"
if log_only:
    args = args[1:]
dump, fixture, work = args
os.makedirs(work, exist_ok=True)
failures = 0


def rates(spec, base, steps, epochs):
    out = subprocess.run([dump, spec, repr(base), str(steps), str(epochs)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert len(out) == steps * epochs, (spec, len(out))
    return [float(x) for x in out]


def compare(name, ours, theirs, tol=1e-7):
    global failures
    worst = max(abs(a - b) for a, b in zip(ours, theirs))
    ok = len(ours) == len(theirs) and worst <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {len(ours)} steps, max |difference| {worst:.3g}")
    if not ok:
        failures += 1
        for k, (a, b) in enumerate(zip(ours, theirs)):
            if abs(a - b) > tol:
                print(f"     step {k}: ours {a!r}, torch {b!r}")
                break


def check_log():
    """Training logs: lr of epoch e is the rate of step (e+1) S - 1, S = ceil(60 / 7) = 9."""
    global failures
    steps, epochs = 9, 3
    for spec in ["cosine(warmup=0.5)", "onecycle(0.3, pct=0.25)", "step(0.5, gamma=0.5)",
                 "cosine(warmup=1.3)"]:
        log = os.path.join(work, "log.jsonl")
        if os.path.exists(log):
            os.remove(log)
        out = subprocess.run([fixture, "train", "--epochs", str(epochs), "--batch", "7",
                              "--validate", "none", "--schedule", spec, "--log", log],
                             check=True, capture_output=True, text=True, cwd=work_data).stdout
        got = [json.loads(line)["lr"] for line in open(log)]
        want = rates(spec, 0.5, steps, epochs)  # the fixture's sgd(lr=0.5)
        last = [want[(e + 1) * steps - 1] for e in range(epochs)]
        lines = [l for l in out.splitlines() if l.startswith("epoch ")]
        shown = all(f"  lr {last[e]:.4g}  " in lines[e] for e in range(epochs))
        ok = got == last and shown
        print(f"{'ok  ' if ok else 'FAIL'} log {spec}: lr {got}, the last steps' {last}")
        failures += not ok


work_data = os.path.dirname(os.path.abspath(work))  # the runtime tests' data directory
if log_only:
    check_log()
    sys.exit(1 if failures else 0)

try:
    import torch
except ImportError:
    print("skipped: /usr/bin/python3 has no torch")
    sys.exit(77)


def torch_rates(make_scheduler, base, total):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = make_scheduler(opt)
    out = []
    for k in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if k + 1 < total:  # no step after the last (OneCycleLR refuses to go past its end)
            sched.step()
    return out


def cosine_lambda(warmup, steps, epochs):
    def f(s):
        t = s / steps
        if t < warmup:
            return min(1.0, (s + 1) / (warmup * steps))
        if epochs - warmup <= 0:
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (t - warmup) / (epochs - warmup)))
    return f


for warmup, steps, epochs, base in [(0.5, 100, 3, 1e-3), (0.25, 37, 4, 0.1), (0, 10, 5, 0.5),
                                    (2, 7, 5, 3e-4), (0.3, 4, 2, 1.0), (1.5, 1, 4, 0.2)]:
    ours = rates(f"cosine(warmup={warmup})", base, steps, epochs)
    theirs = torch_rates(lambda o: torch.optim.lr_scheduler.LambdaLR(
        o, cosine_lambda(warmup, steps, epochs)), base, steps * epochs)
    compare(f"cosine(warmup={warmup}), {steps} steps x {epochs} epochs, lr {base}", ours, theirs)

for max_lr, pct, div, final, steps, epochs in [(0.1, 0.3, 25, 1e4, 50, 4), (1e-3, 0.25, 25, 1e4, 4, 2),
                                               (0.5, 0.1, 10, 100, 33, 3), (2.0, 0.5, 25, 1e4, 9, 1),
                                               (0.01, 0.0, 25, 1e4, 20, 2), (0.3, 1.0, 5, 1e3, 10, 1)]:
    spec = f"onecycle({max_lr}, pct={pct}, div_factor={div}, final_div_factor={final})"
    ours = rates(spec, 123.0, steps, epochs)  # the optimizer's rate plays no part
    theirs = torch_rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=max_lr, total_steps=steps * epochs, pct_start=pct, anneal_strategy="cos",
        cycle_momentum=False, div_factor=div, final_div_factor=final, three_phase=False),
        123.0, steps * epochs)
    compare(f"{spec}, {steps} steps x {epochs} epochs", ours, theirs)

sys.exit(1 if failures else 0)
