#!/usr/bin/python3
"""Data-parallel training under Open MPI: `nnc --mpi` executables run by `mpirun -np N` on this
machine (loopback, oversubscribed), checked against single-process runs of the same global batch.

Usage: mpi.py TEST --nnc PATH --work DIR      (each TEST is one CTest test, see CMakeLists.txt)
Exits 77 (CTest: skipped) with "skipped: ..." when mpirun or nnc's MPI runtime is missing;
.ci/setup installs Open MPI, so CI runs them.

"Match" means: for every parameter and buffer tensor of the checkpoint, max |a - b| <= 1e-5 *
max |b| (relative to the tensor's scale; an element-wise ratio is meaningless for weights near
zero); the optimizer's state within 1e-4 (see expect_match).
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from e2e import Failure, check, fashion_subset, idx_spec, read_safetensors, run  # noqa: E402

EXAMPLES = os.path.join(HERE, "..", "..", "examples")
MLP = os.path.join(EXAMPLES, "fashion_mlp.nn")
BN_DROPOUT = os.path.join(HERE, "bn_dropout.nn")
TOL, OPT_TOL = 1e-5, 1e-3
# The comparisons train with SGD: Adam divides each gradient component by its own running RMS, so
# a component that cancels to rounding noise (different in a different summation order) moves its
# weight by a full +-lr step either way; see README "Data-parallel training" for the numbers.
SGD = "sgd(lr=0.05, momentum=0.9)"
# 641 examples in batches of 64: the last batch has 1 example, so some ranks get none.
TRAIN_COUNT, VAL_COUNT = 641, 203


class Skip(Exception):
    pass


def mpirun_cmd(np_, *rest):
    # vader's single-copy mechanism (CMA) needs ptrace rights that containers often withhold
    return ["mpirun", "-np", str(np_), "--oversubscribe",
            "--mca", "btl_vader_single_copy_mechanism", "none", *rest]


def mpi_env():
    env = dict(os.environ)
    if os.geteuid() == 0:  # Open MPI refuses root unless told twice
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    # In sanitizer builds (NNC_SANITIZE) LeakSanitizer would report Open MPI's own allocations,
    # most from plugins already unloaded and so unattributable; the runtime's code is the same as
    # in the single-process runs, where leaks stay checked.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    return env


class Ctx:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        os.makedirs(self.work, exist_ok=True)
        if not shutil.which("mpirun"):
            raise Skip("skipped: mpirun not found (apt-get install openmpi-bin libopenmpi-dev)")
        nnc_dir = os.path.dirname(os.path.abspath(args.nnc))
        if not os.path.exists(os.path.join(nnc_dir, "libnnrt_mpi.a")):
            raise Skip("skipped: nnc was built without MPI (no libnnrt_mpi.a beside it)")
        self.env = mpi_env()
        ip, lp = fashion_subset(self.work, TRAIN_COUNT)
        vi, vl = fashion_subset(self.work, VAL_COUNT, which="test")
        self.data = idx_spec(ip, lp)
        self.validate = idx_spec(vi, vl)

    def compile(self, source, name, mpi):
        exe = os.path.join(self.work, name)
        run([self.args.nnc, source, "-o", exe] + (["--mpi"] if mpi else []))
        return exe

    def train_args(self, ckpt, *extra):
        return ["train", "--data", self.data, "--validate", self.validate, "--save", ckpt,
                "--optimizer", SGD, "--quiet", *extra]

    def single(self, exe, ckpt, *extra):
        return run([exe] + self.train_args(ckpt, *extra))

    def ranks(self, np_, exe, ckpt, *extra, expect=0):
        return run(mpirun_cmd(np_, exe, *self.train_args(ckpt, *extra)), expect=expect,
                   env=self.env, timeout=120)

    def path(self, name):
        p = os.path.join(self.work, name)
        if os.path.exists(p):
            os.remove(p)
        return p


def worst_relative(got, want, names):
    """max over the tensors `names` of max|got - want| / max|want|, and where it happens."""
    worst, where = 0.0, None
    for k in names:
        scale = float(np.max(np.abs(want[k]))) or 1.0
        r = float(np.max(np.abs(got[k] - want[k]))) / scale
        if r > worst:
            worst, where = r, k
    return worst, where


def expect_match(a_path, b_path, what):
    """The model's tensors (parameters and buffers) within TOL; the optimizer state within
    OPT_TOL: its buffers hold recent gradients, and a gradient behind batchnorm is a difference of
    nearly equal sums, where float rounding weighs more relative to the result."""
    a, _ = read_safetensors(a_path)
    b, _ = read_safetensors(b_path)
    check(set(a) == set(b), f"{what}: tensor names differ: {sorted(set(a) ^ set(b))}")
    model = [k for k in b if not k.startswith("optimizer.")]
    state = [k for k in b if k.startswith("optimizer.")]
    for names, tol, kind in ((model, TOL, "weights"), (state, OPT_TOL, "optimizer state")):
        worst, where = worst_relative(a, b, names)
        print(f"{what}: {kind}: worst relative difference {worst:.3g} (in {where}; tolerance {tol})")
        check(worst <= tol, f"{what}: {where} differs by {worst:.3g} relative > {tol}")


def expect_identical(a_path, b_path, what):
    a, _ = read_safetensors(a_path)
    b, _ = read_safetensors(b_path)
    check(set(a) == set(b), f"{what}: tensor names differ")
    for k in a:
        check(np.array_equal(a[k], b[k]), f"{what}: {k} differs")
    print(f"{what}: all {len(a)} tensors bit-identical")


# ---------------------------------------------------------------- tests

def test_matches_single(ctx):
    """The MLP after one epoch: 2 ranks == 1 process (same global batch of 64) within 1e-5; two
    2-rank runs are bit-identical; the MPI runtime in one rank is bit-identical to the plain one;
    the plain executable has no MPI dependency."""
    plain = ctx.compile(MLP, "mlp", mpi=False)
    mpi = ctx.compile(MLP, "mlp_mpi", mpi=True)
    with open(plain, "rb") as f:
        blob = f.read()
    check(b"libmpi" not in blob and b"MPI_Allreduce" not in blob,
          "the plain executable references MPI")
    with open(mpi, "rb") as f:
        check(b"libmpi" in f.read(), "the --mpi executable does not link libmpi")
    ref, one, two_a, two_b = (ctx.path(n) for n in ("ref.st", "one.st", "two_a.st", "two_b.st"))
    ctx.single(plain, ref, "--epochs", "1", "--batch", "64")
    ctx.ranks(1, mpi, one, "--epochs", "1", "--batch", "64")
    expect_identical(one, ref, "1 rank (MPI runtime) vs plain runtime")
    p = ctx.ranks(2, mpi, two_a, "--epochs", "1", "--batch", "64", "--log",
                  os.path.join(ctx.work, "two.jsonl"))
    check(p.stdout.count("epoch 1/1") == 1, f"expected one epoch line (rank 0 only):\n{p.stdout}")
    expect_match(two_a, ref, "2 ranks vs 1 process")
    ctx.ranks(2, mpi, two_b, "--epochs", "1", "--batch", "64")
    expect_identical(two_a, two_b, "two 2-rank runs")


def test_padded_params(ctx):
    """A small model whose tensors leave alignment padding in the flat parameter buffer (dense(8):
    40 weights, then 8 floats of padding before the bias). The padding, never initialized, made
    the ranks' parameter hashes differ, so every 2-rank run stopped before its first step. Then
    ranks that differ only in the seed's lowest bit."""
    src = os.path.join(ctx.work, "padded.nn")
    seattle = os.path.join(EXAMPLES, "data", "seattle_weather.csv")
    with open(src, "w") as f:
        f.write("input x : float[5]\ntarget y : float[1]\npred = x -> dense(8) -> relu -> dense(1)\n"
                f"loss mse(pred, y)\ntrain {{\n  data = csv(\"{seattle}\", target=\"temp_max\", standardize=true)\n"
                "  validate = split(0.2)\n  batch = 32\n}\n")
    plain, mpi = ctx.compile(src, "padded", mpi=False), ctx.compile(src, "padded_mpi", mpi=True)
    ref, two = ctx.path("padded_ref.st"), ctx.path("padded_two.st")
    common = ["--optimizer", "sgd(lr=0.001, momentum=0.9)", "--epochs", "2", "--quiet"]
    run([plain, "train", "--save", ref, *common])
    run(mpirun_cmd(2, mpi, "train", "--save", two, *common), env=ctx.env, timeout=120)
    expect_match(two, ref, "padded parameters: 2 ranks vs 1 process")
    # Ranks resuming the same checkpoint with seeds 2 and 3 (same parameters, different shuffles):
    # stopped with the seeds named. Only seed >> 1 was compared, so this trained on silently, and
    # seeds 2 and 4 were reported as "1" and "2".
    resume = ["train", "--load", ref, "--epochs", "3", "--quiet"]
    p = run(mpirun_cmd(1, mpi, *resume, "--seed", "2") + [":", "-np", "1", mpi, *resume, "--seed", "3"],
            expect=None, env=ctx.env, timeout=120)
    want = "rank 1: error: the seed differs from rank 0's (3 here, 2 on rank 0)"
    check(p.returncode != 0 and want in p.stderr, f"seeds 2 and 3: exit {p.returncode}, stderr:\n{p.stderr}")


def test_batchnorm_dropout(ctx):
    """A model with batchnorm (conv and dense) and dropout: 2 and 3 ranks (uneven slices of
    21/21/22) match 1 process within 1e-5, running statistics included; and the tolerance is
    discriminating: halving the batch (local statistics would see half-batches) changes the
    weights by far more."""
    plain = ctx.compile(BN_DROPOUT, "bnd", mpi=False)
    mpi = ctx.compile(BN_DROPOUT, "bnd_mpi", mpi=True)
    ref, half, two, three = (ctx.path(n) for n in ("bnd_ref.st", "bnd_half.st", "bnd_2.st", "bnd_3.st"))
    ctx.single(plain, ref, "--batch", "64")
    ctx.ranks(2, mpi, two, "--batch", "64")
    ctx.ranks(3, mpi, three, "--batch", "64")
    expect_match(two, ref, "batchnorm+dropout, 2 ranks vs 1 process")
    expect_match(three, ref, "batchnorm+dropout, 3 ranks vs 1 process")
    ctx.single(plain, half, "--batch", "32")
    a, _ = read_safetensors(half)
    b, _ = read_safetensors(ref)
    worst, where = worst_relative(a, b, [k for k in b if not k.startswith("optimizer.")])
    print(f"batch 32 vs batch 64 (what per-rank statistics would amount to): {worst:.3g} in {where}")
    check(worst > 100 * TOL, f"the comparison cannot tell batch 32 from 64 ({worst:.3g})")


def test_resume_other_ranks(ctx):
    """Checkpoints do not depend on the rank count: 2 ranks for epoch 1 then 1 process for epoch
    2, and 1 process then 3 ranks, both match 2 uninterrupted epochs in 1 process."""
    plain = ctx.compile(MLP, "mlp", mpi=False)
    mpi = ctx.compile(MLP, "mlp_mpi", mpi=True)
    full, a1, a2, b1, b2 = (ctx.path(n) for n in ("full.st", "a1.st", "a2.st", "b1.st", "b2.st"))
    ctx.single(plain, full, "--epochs", "2")
    ctx.ranks(2, mpi, a1, "--epochs", "1")
    ctx.single(plain, a2, "--epochs", "2", "--load", a1)
    expect_match(a2, full, "2 ranks then 1 process vs 1 process")
    ctx.single(plain, b1, "--epochs", "1")
    p = run(mpirun_cmd(3, mpi, "train", "--data", ctx.data, "--validate", ctx.validate,
                       "--optimizer", SGD, "--epochs", "2", "--load", b1, "--save", b2),
            env=ctx.env, timeout=120)
    check("resuming from" in p.stdout and p.stdout.count("epoch 2/2") == 1,
          f"rank 0 should announce the resume and print epoch 2 once:\n{p.stdout}")
    expect_match(b2, full, "1 process then 3 ranks vs 1 process")


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def rank_pid(mpirun_pid, rank):
    """The PID of MPI rank `rank` started by this mpirun (from OMPI_COMM_WORLD_RANK)."""
    todo = children_of(mpirun_pid)
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return pid
        todo += children_of(pid)
    return None


def test_fault_killed_rank(ctx):
    """Rank 1 is killed (SIGKILL) mid-training: the job ends within 60 s with mpirun's message
    naming rank 1 and the signal; the last checkpoint loads and the run resumes from it."""
    plain = ctx.compile(MLP, "mlp", mpi=False)
    mpi = ctx.compile(MLP, "mlp_mpi", mpi=True)
    ckpt = ctx.path("fault.st")
    cmd = mpirun_cmd(2, mpi, *ctx.train_args(ckpt, "--epochs", "100000"))
    job = subprocess.Popen(cmd, env=ctx.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(ckpt) and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        check(os.path.exists(ckpt), "no checkpoint appeared within 60 s")
        time.sleep(0.3)  # into a later epoch
        victim = rank_pid(job.pid, 1)
        check(victim is not None, "cannot find rank 1's process")
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        out, err = job.communicate(timeout=60)
        took = time.monotonic() - killed_at
    finally:
        if job.poll() is None:
            job.kill()
            job.communicate()
    print(f"job ended {took:.1f} s after the kill, exit {job.returncode}")
    print(err.strip()[-600:])
    check(job.returncode != 0, "mpirun exited 0 after a rank was killed")
    check("rank 1" in err and ("signal 9" in err or "Killed" in err),
          f"mpirun's message does not name rank 1 and the signal:\n{err}")
    _, meta = read_safetensors(ckpt)  # parses: nothing half-written
    done = int(meta["epoch"])
    check(done >= 1, f"checkpoint epoch {done}")
    p = run([plain, "eval", "--load", ckpt, "--data", ctx.validate])
    check(p.stdout.startswith(f"examples {VAL_COUNT}"), f"eval of the checkpoint: {p.stdout}")
    resumed = ctx.path("fault_resumed.st")
    p = run([plain, "train", "--data", ctx.data, "--validate", ctx.validate, "--load", ckpt,
             "--save", resumed, "--epochs", str(done + 1)])
    check(f"resuming from '{ckpt}' after epoch {done}" in p.stdout, f"no resume:\n{p.stdout}")
    _, meta = read_safetensors(resumed)
    check(int(meta["epoch"]) == done + 1, f"resumed checkpoint at epoch {meta['epoch']}")


def test_fault_data_rank(ctx):
    """A rank that cannot load its data, or whose data differ from rank 0's, stops the whole job
    with a message naming the rank and the cause; no checkpoint is written."""
    mpi = ctx.compile(MLP, "mlp_mpi", mpi=True)
    ckpt = ctx.path("data_fault.st")
    missing = os.path.join(ctx.work, "no-such-images.gz")
    good = ctx.train_args(ckpt, "--epochs", "1")
    bad = ["train", "--data", idx_spec(missing, missing), "--save", ckpt, "--epochs", "1"]
    base = mpirun_cmd(1, mpi, *good)
    start = time.monotonic()
    p = run(base + [":", "-np", "1", mpi, *bad], expect=None, env=ctx.env, timeout=60)
    print(f"missing data on rank 1: exit {p.returncode} after {time.monotonic() - start:.1f} s")
    check(p.returncode != 0, "exit 0 with a missing data file on rank 1")
    check(f"rank 1: error: cannot open data file '{missing}' (--data): no such file" in p.stderr,
          f"no message naming rank 1 and the file:\n{p.stderr}")
    check(not os.path.exists(ckpt), "a checkpoint was written")
    ip, lp = fashion_subset(ctx.work, 500)
    other = ["train", "--data", idx_spec(ip, lp), "--validate", ctx.validate, "--save", ckpt,
             "--epochs", "1"]
    p = run(base + [":", "-np", "1", mpi, *other], expect=None, env=ctx.env, timeout=60)
    check(p.returncode != 0, "exit 0 with different data on rank 1")
    want = (f"rank 1: error: the number of training examples differs from rank 0's "
            f"(500 here, {TRAIN_COUNT} on rank 0)")
    check(want in p.stderr, f"expected '{want}' in:\n{p.stderr}")
    check(not os.path.exists(ckpt), "a checkpoint was written")


def read_jsonl(path):
    import json
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_compare_ranks(ctx):
    """`mpirun -np 2 nnc compare --mpi`: the runs are spread over both ranks, and the table and every
    run's curve equal those of the same comparison in one process (timings aside)."""
    import csv
    sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
    from compare import DESIGNS  # noqa: E402  (the Seattle-weather designs of the compare tests)
    names = ["reg_a.nn", "reg_b.nn", "nan.nn"]
    for name in names:
        with open(os.path.join(ctx.work, name), "w") as f:
            f.write(DESIGNS[name])
    common = names + ["-D", "width=4,16", "--seeds", "2", "--epochs", "4"]
    # Without mpirun, --mpi is a usage error, and nothing is written.
    p = run([ctx.args.nnc, "compare", "--mpi", *common, "--out", "none"], expect=1, cwd=ctx.work, env=ctx.env)
    check("nnc compare: error: --mpi spreads the runs over the ranks of mpirun, but this nnc was not started by "
          "mpirun; run: mpirun -np N nnc compare --mpi ..." in p.stderr, f"no usage error:\n{p.stderr}")
    check(not os.path.exists(os.path.join(ctx.work, "none")), "--mpi without mpirun wrote files")
    # nan.nn diverges: both exit 1, with the failure in the table.
    run([ctx.args.nnc, "compare", *common, "--out", "single"], expect=1, cwd=ctx.work, env=ctx.env)
    p = run(mpirun_cmd(2, ctx.args.nnc, "compare", "--mpi", *common, "--out", "spread"), expect=1, cwd=ctx.work,
            env=ctx.env)
    check("nnc compare (rank 1 of 2): done; rank 0 writes the table" in p.stderr, f"rank 1 did not report:\n{p.stderr}")

    def table(out):
        with open(os.path.join(ctx.work, out, "results.csv")) as f:
            rows = list(csv.DictReader(f))
        timing = ("compile_seconds", "seconds_per_epoch_mean", "seconds_per_epoch_std")
        return [{k: v for k, v in r.items() if k not in timing} for r in rows]

    single, spread = table("single"), table("spread")
    check(len(single) == 4 and single == spread, f"tables differ:\n{single}\n{spread}")
    check([r["status"] for r in spread] == ["ok", "ok", "ok", "failed"], f"statuses: {[r['status'] for r in spread]}")
    owners = set()
    for design in ("reg_a-width=4", "reg_a-width=16", "reg_b", "nan"):
        for seed in (1, 2):
            run_dir = os.path.join(ctx.work, "spread", "runs", design, f"seed{seed}")
            with open(os.path.join(run_dir, "status")) as f:
                owners.add(f.readline().strip())
            if design == "nan":
                continue
            a = read_jsonl(os.path.join(ctx.work, "single", "runs", design, f"seed{seed}", "log.jsonl"))
            b = read_jsonl(os.path.join(run_dir, "log.jsonl"))
            strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds", "samples_per_sec")} for r in rows]
            check(strip(a) == strip(b), f"{design} seed {seed}: curves differ between 1 process and 2 ranks")
            expect_identical(os.path.join(ctx.work, "single", "runs", design, f"seed{seed}", "model.safetensors"),
                             os.path.join(run_dir, "model.safetensors"), f"{design} seed {seed}")
    check(owners == {"rank 0", "rank 1"}, f"runs were not spread over both ranks: {owners}")
    # DIR not shared (each rank in its own working directory, --out relative): rank 1 says so and
    # the job ends; rank 0 used to wait forever for rank 1's marker.
    for rank in (0, 1):
        os.makedirs(os.path.join(ctx.work, f"host{rank}"), exist_ok=True)
        shutil.copy(os.path.join(ctx.work, "reg_a.nn"), os.path.join(ctx.work, f"host{rank}", "reg_a.nn"))
    rank_cmd = [ctx.args.nnc, "compare", "--mpi", "reg_a.nn", "--seeds", "2", "--epochs", "1", "--out", "local"]
    env = dict(ctx.env, NNC_COMPARE_SHARE_WAIT="2")
    p = run(mpirun_cmd(1, "-x", "NNC_COMPARE_SHARE_WAIT", "--wdir", os.path.join(ctx.work, "host0"), *rank_cmd)
            + [":", "-np", "1", "--wdir", os.path.join(ctx.work, "host1"), *rank_cmd], expect=None, env=env, timeout=60)
    want = ("nnc compare (rank 1 of 2): error: rank 0 has not written 'local/rank0.job' within 2 s, so --out 'local' "
            "is not the directory rank 0 writes; --mpi needs DIR on a file system that every rank shares")
    check(p.returncode != 0 and want in p.stderr, f"unshared DIR: exit {p.returncode}, stderr:\n{p.stderr}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test")
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    fn = globals().get("test_" + args.test)
    if not fn:
        print(f"unknown test {args.test}", file=sys.stderr)
        return 2
    try:
        fn(Ctx(args))
    except Skip as s:
        print(s)
        return 77
    except Failure as f:
        print(f"FAIL: {f}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
