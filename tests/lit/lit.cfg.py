# lit configuration for nnc's compiler tests: diagnostics (exact file:line:col and message),
# dumps, summaries and IR, checked with FileCheck. Run through CTest (tests/CMakeLists.txt).
import os
import sys
import lit.formats

config.name = "nnc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".nn", ".test"]
config.excludes = ["inputs"]
config.test_source_root = os.path.dirname(__file__)
build = lit_config.params.get("build", os.getcwd())
config.test_exec_root = os.path.join(build, "lit-out")
config.substitutions.append(("%nnc", lit_config.params["nnc"]))
config.substitutions.append(("%examples", lit_config.params["examples"]))
# %python runs helper scripts and generates large or binary inputs inside RUN lines;
# %bounded runs a command under a time and memory limit and checks its exit status
# (tests/lit/inputs/bounded.py), so hostile inputs prove "a clear error, never a crash or hang".
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%bounded", sys.executable + " " + os.path.join(os.path.dirname(__file__), "inputs", "bounded.py")))
config.environment["FILECHECK_OPTS"] = "--dump-input=fail"
# ASan reserves terabytes of address space for its shadow: bounded.py then skips its
# address-space limit and allows more time (a sanitized nnc is several times slower).
if lit_config.params.get("sanitized", "0") in ("1", "ON", "TRUE", "true"):
    config.environment["NNC_SANITIZED"] = "1"
llvm_bin = lit_config.params.get("llvm_bin", "/usr/lib/llvm-19/bin")
config.environment["PATH"] = os.pathsep.join([llvm_bin, config.environment.get("PATH", "")])
# An x86-64-v4 executable needs AVX-512 to run (not every CI host or AMD EPYC has it).
try:
    with open("/proc/cpuinfo") as cpuinfo:
        if " avx512f" in cpuinfo.read():
            config.available_features.add("avx512")
except OSError:
    pass
# A small tmpfs in a private mount namespace simulates a full disk (output_no_space.test).
import subprocess
import tempfile
with tempfile.TemporaryDirectory() as probe:
    try:
        if subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
            config.available_features.add("tmpfs")
    except OSError:
        pass
