#!/usr/bin/env python3
"""Runs a command with limits and checks how it ended, for lit tests of hostile inputs.

    bounded.py [--status N] [--seconds S] [--memory-mb M] -- COMMAND ARGS...

Prints the command's stderr then stdout (so FileCheck can read the messages) and exits 0 when
the command exited with status N (default 1) within S seconds (default 10) and M MiB of address
space (default 4096); otherwise exits 1 saying why. A signal (a crash) is always a failure.
With NNC_SANITIZED=1 in the environment (an ASan build, whose shadow memory needs terabytes of
address space) the memory limit is not applied and the time limit is four times longer."""
import argparse
import os
import resource
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--status", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--memory-mb", type=int, default=4096)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    command = a.command[1:] if a.command and a.command[0] == "--" else a.command

    sanitized = os.environ.get("NNC_SANITIZED") == "1"
    if sanitized:
        a.seconds *= 4

    def limit():
        if sanitized:
            return
        size = a.memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    try:
        p = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=a.seconds,
                           preexec_fn=limit)
    except subprocess.TimeoutExpired:
        print(f"bounded.py: {command[0]} did not finish within {a.seconds} s")
        return 1
    sys.stdout.buffer.write(p.stderr)
    sys.stdout.buffer.write(p.stdout)
    sys.stdout.flush()
    if p.returncode < 0:
        print(f"bounded.py: {command[0]} was killed by signal {-p.returncode}")
        return 1
    if p.returncode != a.status:
        print(f"bounded.py: {command[0]} exited with status {p.returncode}, expected {a.status}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
