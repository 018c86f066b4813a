"""`nnc lsp` under a real client: Neovim (Debian's neovim) headless, its built-in LSP client
attached to the server (nvim_client.lua); the diagnostics and the hover it received are checked
exactly. Skipped, with a note, when nvim is not installed."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lsp_test import TINY  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    a = ap.parse_args()
    nvim = shutil.which("nvim")
    if not nvim:
        print("SKIP: no nvim (Debian: apt-get install neovim)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.nn")
        with open(model, "w") as f:
            f.write(TINY.replace("block(width)", "block(widht)"))
        out = os.path.join(tmp, "seen.txt")
        env = dict(os.environ, NNC=os.path.abspath(a.nnc), NN_FILE=model, OUT=out, HOME=tmp,
                   XDG_CONFIG_HOME=tmp, XDG_DATA_HOME=tmp, XDG_STATE_HOME=tmp, XDG_CACHE_HOME=tmp)
        p = subprocess.run([nvim, "--headless", "--clean", "-c", "luafile " + os.path.join(HERE, "nvim_client.lua")],
                           env=env, capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
        if not os.path.exists(out):
            print("FAIL: nvim wrote nothing (exit %d)\n%s\n%s" % (p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")))
            sys.exit(1)
        seen = open(out).read().splitlines()
    want = [
        "diagnostic 12:36-12:41 severity=1 unknown name 'widht'; did you mean 'width'?",
        "hover: ```nn",
        "dense(n, bias=true)",
        "```",
        "Fully connected layer: [k] -> [n] (or per position on [t, k]), y = x W^T + b.",
        "",
        # [8] -> [16]: 8*16 + 16 parameters, 2*8*16 + 16 FLOPs
        "`[16]` · layer `dense0` · 144 parameters · 272 FLOPs",
        "diagnostics after the fix: 0",
    ]
    # (while the error is there sema stops before the block: the hover still has dense0's shape)
    if seen != want:
        print("FAIL: Neovim saw\n  " + "\n  ".join(seen) + "\nwanted\n  " + "\n  ".join(want))
        sys.exit(1)
    print("ok: Neovim's LSP client got the diagnostic, the hover and the cleared diagnostics")


if __name__ == "__main__":
    main()
