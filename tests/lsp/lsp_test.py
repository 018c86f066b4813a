"""Tests of `nnc lsp`, `nnc fmt` over every model and `nnc draw` over the examples.

  lsp_test.py protocol --nnc NNC        a scripted client session, every response checked exactly
  lsp_test.py corpus --nnc NNC          the fuzzer's seed corpus and hostile documents as didOpen
  lsp_test.py fmt_models --nnc NNC      fmt is idempotent and keeps --dump-graph, on every model
  lsp_test.py draw_examples --nnc NNC   the examples' SVG diagrams parse and name every layer
  lsp_test.py editors --nnc NNC         the TextMate grammar and the Vim syntax know every op
  lsp_test.py compare_diagrams --nnc NNC  nnc compare draws each design beside its runs

The parameter and FLOP counts expected in hovers are derived by hand in the comments (a dense
layer k -> n has k*n + n parameters and 2*k*n + n FLOPs, an elementwise op one per element).
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lsp_client import Client  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY = """model tiny

param width = 16

input  x : float[8]
target y : class[4]

# a residual block
def block(h, n) {
  return h + (h -> dense(n) -> relu)
}

h      = x -> dense(width) -> block(width)
logits = h -> dense(4, name="head")

loss   cross_entropy(logits, y)
metric accuracy(logits, y)
"""
URI = "file:///work/tiny.nn"


def rng(l0, c0, l1, c1):
    return {"start": {"line": l0, "character": c0}, "end": {"line": l1, "character": c1}}


def expect(what, got, want):
    if got != want:
        print("FAIL: %s\n  got:  %s\n  want: %s" % (what, json.dumps(got, sort_keys=True), json.dumps(want, sort_keys=True)))
        sys.exit(1)
    print("ok: %s" % what)


def hover_value(c, line, character, uri=URI):
    r = c.at("textDocument/hover", uri, line, character)["result"]
    return r and r["contents"]["value"]


def test_protocol(nnc):
    c = Client(nnc)
    # Requests before initialize are refused.
    expect("request before initialize", c.request("textDocument/hover", {})["error"]["code"], -32002)
    init = c.initialize()
    expect("initialize", init["result"], {
        "capabilities": {
            "positionEncoding": "utf-16",
            "textDocumentSync": {"openClose": True, "change": 1},
            "hoverProvider": True, "definitionProvider": True,
            "completionProvider": {"triggerCharacters": [">", "(", ","]},
            "documentSymbolProvider": True, "documentFormattingProvider": True},
        "serverInfo": {"name": "nnc"}})

    d = c.open(URI, TINY)
    expect("didOpen: a clean model", d["params"], {"uri": URI, "version": 1, "diagnostics": []})

    # An error introduced: a misspelt name, with its did-you-mean.
    d = c.change(URI, TINY.replace("block(width)", "block(widht)"), 2)
    expect("didChange: unknown name", d["params"], {"uri": URI, "version": 2, "diagnostics": [{
        "range": rng(12, 36, 12, 41), "severity": 1, "source": "nnc",
        "message": "unknown name 'widht'; did you mean 'width'?"}]})

    # An error inside a block: the instantiation is a note with a place (related information).
    d = c.change(URI, TINY.replace("dense(n) -> relu", "dense(n + 1) -> relu"), 3)
    expect("didChange: error in a block, note as related information", d["params"], {"uri": URI, "version": 3, "diagnostics": [{
        "range": rng(9, 9, 9, 40), "severity": 1, "source": "nnc",
        "message": "'+' needs tensors of the same shape, got [16] and [17]",
        "relatedInformation": [{"location": {"uri": URI, "range": rng(12, 30, 12, 42)},
                                "message": "in block 'block' instantiated here"}]}]})

    # A warning (severity 2): notes with a place are related information, the others join the
    # message.
    d = c.change(URI, TINY.replace('dense(4, name="head")', 'dense(4, name="head") -> softmax'), 4)
    expect("didChange: a warning", d["params"], {"uri": URI, "version": 4, "diagnostics": [{
        "range": rng(13, 39, 13, 46), "severity": 2, "source": "nnc",
        "message": "cross_entropy applies softmax to its input itself; this 'softmax' makes it apply it twice\n"
                   "note: it then reads squashed values as logits: its gradients shrink and training stalls\n"
                   "note: pass the logits (remove '-> softmax'); predict still prints probabilities",
        "relatedInformation": [{"location": {"uri": URI, "range": rng(15, 7, 15, 31)}, "message": "cross_entropy is here"}]}]})

    # Fixed again: the diagnostics are cleared.
    d = c.change(URI, TINY, 5)
    expect("didChange: fixed", d["params"], {"uri": URI, "version": 5, "diagnostics": []})

    # Hover on an op call: signature (piped: without the tensor), doc, shape, layer, parameters
    # and FLOPs. dense0: [8] -> [16]: 8*16 + 16 = 144 parameters, 2*8*16 + 16 = 272 FLOPs.
    expect("hover: dense call", hover_value(c, 12, 16),
           "```nn\ndense(n, bias=true)\n```\nFully connected layer: [k] -> [n] (or per position on [t, k]), y = x W^T + b.\n\n"
           "`[16]` · layer `dense0` · 144 parameters · 272 FLOPs")
    # Hover on the `->` before a call: the same step.
    expect("hover: the -> step", hover_value(c, 12, 12), hover_value(c, 12, 16))
    # A block call: its instance's nodes only (not its input's): dense 16*16 + 16 = 272
    # parameters; FLOPs 2*16*16 + 16 = 528, relu 16, add 16: 560.
    expect("hover: block call", hover_value(c, 12, 31),
           "```nn\ndef block(h, n)\n```\nblock defined on line 9\n\n`[16]` · 272 parameters · 560 FLOPs")
    # head: [16] -> [4]: 16*4 + 4 = 68 parameters, 2*16*4 + 4 = 132 FLOPs.
    expect("hover: named layer", hover_value(c, 13, 15),
           "```nn\ndense(n, bias=true)\n```\nFully connected layer: [k] -> [n] (or per position on [t, k]), y = x W^T + b.\n\n"
           "`[4]` · layer `head` · 68 parameters · 132 FLOPs")
    expect("hover: a name's shape", hover_value(c, 13, 9), "`h` — bound on line 13\n\n`[16]`")
    expect("hover: inside a block, per instance", hover_value(c, 9, 20),
           "```nn\ndense(n, bias=true)\n```\nFully connected layer: [k] -> [n] (or per position on [t, k]), y = x W^T + b.\n\n"
           "- in `block0`: `[16]` · layer `block0.dense0` · 272 parameters · 528 FLOPs")
    expect("hover: a block parameter's value", hover_value(c, 9, 25), "`n` — block parameter on line 9\n\n- in `block0`: = 16")
    expect("hover: param", hover_value(c, 2, 7), "`width` (param)\n\n= 16")
    expect("hover: input", hover_value(c, 4, 7), "input `x` : `float[8]`")
    expect("hover: keyword argument", hover_value(c, 13, 24), "`name`: the layer's name (default: the op and a counter, e.g. dense0)")
    expect("hover: the model", hover_value(c, 0, 8), "model `tiny` · 484 parameters")  # 144 + 272 + 68
    expect("hover: nothing (a comment)", hover_value(c, 7, 4), None)

    # Go to definition: a binding, a block, a block's parameter, a param.
    def definition(line, character):
        return c.at("textDocument/definition", URI, line, character)["result"]
    expect("definition: binding", definition(13, 9), {"uri": URI, "range": rng(12, 0, 12, 1)})
    expect("definition: block", definition(12, 30), {"uri": URI, "range": rng(8, 4, 8, 9)})
    expect("definition: block parameter", definition(9, 25), {"uri": URI, "range": rng(8, 13, 8, 14)})
    expect("definition: param", definition(12, 37), {"uri": URI, "range": rng(2, 6, 2, 11)})
    expect("definition: an op has none", definition(12, 16), None)

    # Completion inside an op's parentheses: its keyword arguments with defaults first, then
    # the names in scope, then the ops and blocks.
    items = c.at("textDocument/completion", URI, 13, 22)["result"]["items"]
    expect("completion: keyword arguments", [(i["label"], i.get("detail"), i["kind"]) for i in items[:3]],
           [("n=", "required", 10), ("bias=", "default true", 10), ("name=", "the layer's name", 10)])
    labels = [i["label"] for i in items]
    expect("completion: names in scope", labels[3:7], ["width", "x", "y", "h"])
    expect("completion: ops and blocks", ("conv2d" in labels, "attention" in labels, labels[-1]), (True, True, "block"))
    items = c.at("textDocument/completion", URI, 9, 25)["result"]["items"]
    expect("completion: inside a block", [i["label"] for i in items[:5]], ["n=", "bias=", "name=", "h", "n"])

    # Document symbols: layers, blocks, params.
    symbols = c.request("textDocument/documentSymbol", {"textDocument": {"uri": URI}})["result"]
    flat = [(s["name"], s["kind"], s.get("detail"), [(k["name"], k.get("detail")) for k in s.get("children", [])]) for s in symbols]
    expect("document symbols", flat, [
        ("tiny", 2, None, []), ("width", 14, "16", []), ("x", 13, "input", []), ("y", 13, "target", []),
        ("block", 12, "block(h, n)", [("block0.dense0", "dense [16]")]),
        ("h", 13, "[16]", [("dense0", "dense [16]")]), ("logits", 13, "[4]", [("head", "dense [4]")])])

    # Formatting: one edit, the canonical layout (nnc fmt).
    messy = TINY.replace("h      = x -> dense(width)", "h=x->dense( width )")
    c.change(URI, messy, 6)
    edits = c.request("textDocument/formatting", {"textDocument": {"uri": URI}, "options": {"tabSize": 2, "insertSpaces": True}})["result"]
    expect("formatting", edits, [{"range": rng(0, 0, 17, 0), "newText": TINY}])
    c.change(URI, TINY, 7)
    expect("formatting: nothing to do", c.request("textDocument/formatting", {"textDocument": {"uri": URI}})["result"], [])

    # A second document, analyzed on its own; closing it clears its diagnostics.
    other = "file:///work/other%20model.nn"
    d = c.open(other, "input x : float[3]\nh = x -> dense(2)\n")
    expect("second document", d["params"], {"uri": other, "version": 1, "diagnostics": [{
        "range": rng(0, 0, 0, 0), "severity": 1, "source": "nnc",
        "message": "the model has no 'loss' statement\nnote: add one, e.g. 'loss cross_entropy(logits, label)'"}]})
    expect("first document unchanged", hover_value(c, 13, 9), "`h` — bound on line 13\n\n`[16]`")
    c.notify("textDocument/didClose", {"textDocument": {"uri": other}})
    expect("didClose clears", c.notification("textDocument/publishDiagnostics")["params"], {"uri": other, "diagnostics": []})
    expect("closed document", c.at("textDocument/hover", other, 0, 0)["result"], None)

    # UTF-16 positions: a character outside the BMP counts two code units (four bytes).
    c.change(URI, TINY + 'train {\n  data = csv("\U0001F600.csv", target="y")\n}\n', 8)
    expect("utf-16 columns", c.at("textDocument/hover", URI, 18, 24)["result"]["range"], rng(18, 23, 18, 29))
    # The train block's forms come from the settings table: signature on hover, keyword
    # arguments with their defaults in completion.
    expect("hover: a train setting", hover_value(c, 18, 10),
           '```nn\ncsv(path, target="", header=true, standardize=false, missing="error", target_column, text, length, '
           'tokenize, vocab)\n```\ntrain setting')
    items = c.at("textDocument/completion", URI, 18, 13)["result"]["items"]
    expect("completion: a train setting's arguments", [(i["label"], i["detail"]) for i in items[:6]],
           [("path=", "required"), ("target=", 'default ""'), ("header=", "default true"), ("standardize=", "default false"),
            ("missing=", 'default "error"'), ("target_column=", "optional")])

    # Protocol errors: not JSON, an unknown method; the server carries on.
    c.send_raw(b"Content-Length: 9\r\n\r\n{not json")
    expect("malformed JSON", c.read()["error"]["code"], -32700)
    expect("unknown method", c.request("workspace/symbol", {"query": ""})["error"]["code"], -32601)

    r, status = c.close()
    expect("shutdown", r, {"jsonrpc": "2.0", "id": r["id"], "result": None})
    expect("exit status after shutdown + exit", status, 0)

    # A usage error.
    p = subprocess.run([nnc, "lsp", "--bogus"], capture_output=True, timeout=20)
    expect("usage error", (p.returncode, p.stderr.decode()),
           (1, "nnc: error: nnc lsp takes no arguments ('--bogus'); it speaks LSP on stdin/stdout\n"))

    # The input ending without shutdown: exit status 1, no hang.
    p = subprocess.run([nnc, "lsp"], input=b"", capture_output=True, timeout=20)
    expect("end of input without shutdown", p.returncode, 1)


def corpus_files():
    dirs = ["examples", "tests/lit/diagnostics", "tests/lit/frontend", "tests/e2e/models", "tests/lit/hostile",
            "tests/lit/fmt/inputs", "tests/lit/draw/inputs"]
    files = []
    for d in dirs:
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            path = os.path.join(ROOT, d, name)
            if os.path.isfile(path):
                files.append(path)
    return files


def hostile_documents():
    r = random.Random(7)
    yield "empty", ""
    yield "binary", bytes(r.randrange(256) for _ in range(4096)).decode("latin-1")
    yield "deep parentheses", "input x : float[4]\nh = " + "(" * 20000 + "x" + ")" * 20000 + "\n"
    yield "unclosed", "def b(x) {\n" * 2000
    yield "long line", "h = x" + " -> relu" * 20000 + "\n"
    yield "many blocks", "input x : float[4]\ndef b(h) {\n  return h -> b -> b\n}\nh = x -> b\n"
    yield "huge (over 4 MiB)", "# " + "x" * (5 << 20) + "\n"
    yield "NUL bytes", "input x\0 : float[4]\n"


def test_corpus(nnc):
    c = Client(nnc)
    c.initialize()
    docs = [(p, open(p, "rb").read().decode("utf-8", errors="replace")) for p in corpus_files()]
    docs += list(hostile_documents())
    slowest = (0, None)
    for i, (name, text) in enumerate(docs):
        uri = "file:///corpus/%d.nn" % i
        t0 = time.monotonic()
        d = c.open(uri, text)
        assert d["params"]["uri"] == uri, name
        lines = text.split("\n")
        # hover, definition and completion at a few places, symbols and formatting
        for k in range(6):
            line = (k * 7) % max(1, len(lines))
            character = (k * 13) % (len(lines[line]) + 1) if lines else 0
            for method in ("textDocument/hover", "textDocument/definition", "textDocument/completion"):
                r = c.at(method, uri, line, character)
                assert "result" in r, (name, method, r)
        assert "result" in c.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}}), name
        assert "result" in c.request("textDocument/formatting", {"textDocument": {"uri": uri}}), name
        # a change that cuts the document in half, then the close
        c.change(uri, text[: len(text) // 2], 2)
        c.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        c.notification("textDocument/publishDiagnostics")
        elapsed = time.monotonic() - t0
        slowest = max(slowest, (elapsed, name))
    r, status = c.close()
    assert status == 0, status
    print("ok: %d documents (%d files of the fuzzer's seed corpus, %d hostile); slowest %.2fs (%s)"
          % (len(docs), len(docs) - len(list(hostile_documents())), len(list(hostile_documents())), slowest[0], slowest[1]))
    # Broken framing: garbage headers, a huge Content-Length at the end of the input.
    p = subprocess.run([nnc, "lsp"], input=b"garbage\r\n\r\nContent-Length: x\r\n\r\nContent-Length: 999999999999\r\n\r\n{}",
                       capture_output=True, timeout=20)
    expect("broken framing ends cleanly", p.returncode, 1)


def models():
    out = []
    for d in ["examples", "tests/e2e/models", "tests/lit/diagnostics", "tests/lit/frontend", "tests/lit/summary",
              "tests/lit/fmt/inputs", "tests/lit/draw/inputs"]:
        full = os.path.join(ROOT, d)
        if os.path.isdir(full):
            out += [os.path.join(full, n) for n in sorted(os.listdir(full)) if n.endswith(".nn")]
    return out


def run(args, **kw):
    return subprocess.run(args, capture_output=True, timeout=60, **kw)


def fmt_one(nnc, path, tmp):
    """'formatted', 'refused' (syntax errors) or raises: formats PATH, checks idempotence and the graph."""
    once = run([nnc, "fmt", path, "-o", "-"])
    if once.returncode == 1 and b"does not parse" in once.stderr:
        return "refused"  # the syntax-error tests: fmt refuses them, as it should
    assert once.returncode == 0, (path, once.stderr)
    # the same file name in another directory: the model's default name is the stem
    sub = os.path.join(tmp, str(abs(hash(path))))
    os.makedirs(sub)
    copy = os.path.join(sub, os.path.basename(path))
    with open(copy, "wb") as f:
        f.write(once.stdout)
    twice = run([nnc, "fmt", copy, "-o", "-"])
    assert twice.stdout == once.stdout, "not idempotent: %s" % path
    before, after = run([nnc, path, "--dump-graph"]), run([nnc, copy, "--dump-graph"])
    assert before.returncode == after.returncode, path
    if before.returncode == 0:
        assert before.stdout == after.stdout, "the graph changed: %s" % path
    else:
        # a model with semantic errors keeps exactly its errors (messages, not places)
        strip = lambda s: [l.split(": error: ")[-1] for l in s.decode().splitlines() if ": error: " in l]
        assert strip(before.stderr) == strip(after.stderr), path
    return "formatted"


def test_fmt_models(nnc):
    from concurrent.futures import ThreadPoolExecutor
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: fmt_one(nnc, p, tmp), models()))
    formatted, refused = results.count("formatted"), results.count("refused")
    assert formatted > 100, formatted
    print("ok: %d models formatted idempotently with the same graph (%d with syntax errors refused)" % (formatted, refused))


def test_draw_examples(nnc):
    with tempfile.TemporaryDirectory() as tmp:
        for name in sorted(os.listdir(os.path.join(ROOT, "examples"))):
            if not name.endswith(".nn"):
                continue
            path = os.path.join(ROOT, "examples", name)
            svg = os.path.join(tmp, name[:-3] + ".svg")
            p = run([nnc, "draw", path, "-o", svg])
            assert p.returncode == 0, (path, p.stderr)
            root = ET.parse(svg).getroot()  # well-formed XML
            assert root.tag.endswith("svg"), root.tag
            text = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
            # every layer of the summary table appears in the drawing
            summary = run([nnc, "summary", path]).stdout.decode().splitlines()
            layers = [l.split()[0] for l in summary[2:] if l.strip() and not l.startswith(("parameters", "FLOPs", "optimizer", "activations"))]
            named = [l for l in layers if l != "-"]
            assert named, path
            missing = [l for l in named if l not in text]
            # the input and target are drawn with their declared names; metrics are not drawn
            assert not missing, (path, missing)
            assert "loss" in text, path
            clusters = [g for g in root.iter() if g.get("class") == "cluster"]
            blocks = "def " in open(path).read()
            assert bool(clusters) == blocks, (path, len(clusters))
            if "fashion_resnet" in name:
                residual = [t for t in root.iter() if t.tag.endswith("text") and t.text == "residual"]
                assert len(residual) == 2, len(residual)  # one per res_block instance
            print("ok: %s: %d layers named, %d clusters" % (name, len(named), len(clusters)))


def op_names(nnc):
    """The ops of the language, as nnc lsp completes them (the op table)."""
    c = Client(nnc)
    c.initialize()
    c.open("file:///ops.nn", "")
    items = c.at("textDocument/completion", "file:///ops.nn", 0, 0)["result"]["items"]
    c.close()
    return [i["label"] for i in items if i["kind"] == 3]


def test_editors(nnc):
    import re
    ops = op_names(nnc)
    assert len(ops) > 20, ops
    editors = os.path.join(ROOT, "grammar", "editors")
    grammar = json.load(open(os.path.join(editors, "nn.tmLanguage.json")))
    repo = grammar["repository"]
    op_re = re.compile(repo["op"]["match"])
    missing = [o for o in ops if not op_re.fullmatch(o)]
    expect("TextMate grammar: every op", missing, [])
    expect("TextMate grammar: not a name that merely starts like an op", bool(op_re.fullmatch("dense_layer")), False)
    kw = re.compile(repo["keyword-argument"]["match"])
    expect("TextMate grammar: keyword arguments", [m.group(2) for m in kw.finditer('dense(2, bias=false, name="a")')], ["bias", "name"])
    expect("TextMate grammar: numbers", [m.group(0) for m in re.finditer(repo["number"]["match"], "lr=1e-3 x2 .5 3.")], ["1e-3", ".5", "3."])
    expect("TextMate grammar: comments", re.search(repo["comment"]["match"], 'h = x  # a comment').group(0), "# a comment")
    vim_syntax = open(os.path.join(editors, "vim", "syntax", "nn.vim")).read()
    vim_ops = set()
    for line in vim_syntax.splitlines():
        if line.startswith("syn keyword nnOp "):
            vim_ops.update(line.split()[3:])
    expect("Vim syntax: every op", [o for o in ops if o not in vim_ops], [])
    nvim = shutil.which("nvim")
    if not nvim:
        print("SKIP: Vim syntax groups (no nvim)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "s.nn")
        with open(model, "w") as f:
            f.write("model m\ninput x : float[4]\ntarget y : class[2]\n# comment\nh = x -> dense(2, bias=false) -> relu\n"
                    "loss cross_entropy(h, y)\n")
        script = os.path.join(tmp, "syn.lua")
        with open(script, "w") as f:
            f.write("""vim.opt.runtimepath:prepend(os.getenv('RTP'))
vim.cmd('runtime! ftdetect/nn.vim')
vim.cmd('filetype on | syntax on')
vim.cmd('edit ' .. os.getenv('NN_FILE'))
local out = {'filetype ' .. vim.bo.filetype}
for _, p in ipairs({{1,1},{4,3},{5,7},{5,10},{5,16},{5,19},{5,24},{6,6}}) do
  table.insert(out, string.format('%d:%d %s', p[1], p[2], vim.fn.synIDattr(vim.fn.synID(p[1], p[2], 1), 'name')))
end
vim.fn.writefile(out, os.getenv('OUT'))
vim.cmd('qa!')
""")
        out = os.path.join(tmp, "seen.txt")
        env = dict(os.environ, RTP=os.path.join(editors, "vim"), NN_FILE=model, OUT=out, HOME=tmp, XDG_CONFIG_HOME=tmp,
                   XDG_DATA_HOME=tmp, XDG_STATE_HOME=tmp, XDG_CACHE_HOME=tmp)
        subprocess.run([nvim, "--headless", "--clean", "-c", "luafile " + script], env=env, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
        seen = open(out).read().splitlines()
    expect("Vim syntax groups", seen, ["filetype nn", "1:1 nnKeyword", "4:3 nnComment", "5:7 nnArrow", "5:10 nnOp",
                                       "5:16 nnNumber", "5:19 nnKeywordArg", "5:24 nnBoolean", "6:6 nnOp"])


def svg_text(path):
    root = ET.parse(path).getroot()
    return [t.text for t in root.iter() if t.tag.endswith("text") and t.text]


def test_compare_diagrams(nnc):
    seattle = os.path.join(ROOT, "examples", "data", "seattle_weather.csv")
    if not os.path.exists(seattle):
        print("SKIP: no %s (.ci/setup writes it)" % seattle)
        return
    def design(name, body, params=""):
        return ("model %s\n%sinput  features : float[5]\ntarget temp_max : float[1]\npred = features -> %s\n"
                "loss mse(pred, temp_max)\ntrain {\n  data = csv(\"%s\", target=\"temp_max\", standardize=true)\n"
                "  validate = split(0.2)\n  epochs = 1\n  batch = 32\n}\n" % (name, params, body, seattle))
    with tempfile.TemporaryDirectory() as tmp:
        files = {"wide.nn": design("wide", "dense(width) -> relu -> dense(1)", "param width = 32\n"),
                 "deep.nn": design("deep", "dense(8) -> tanh -> dense(8) -> relu -> dense(1)"),
                 "bad.nn": design("bad", "dense(8) -> relu -> dense(2)")}
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        p = subprocess.run([nnc, "compare", "wide.nn", "deep.nn", "bad.nn", "-D", "width=8,16", "--seeds", "1",
                            "--epochs", "1", "--out", "out"], cwd=tmp, capture_output=True, timeout=240)
        expect("compare with a failing design exits 1", p.returncode, 1)
        runs = os.path.join(tmp, "out", "runs")
        diagrams = {d: os.path.join(runs, d, "network.svg") for d in sorted(os.listdir(runs))}
        drawn = {d: svg_text(path) for d, path in diagrams.items() if os.path.exists(path)}
        expect("a diagram per design that compiles, none for the one that does not",
               sorted(drawn), sorted(d for d in diagrams if not d.startswith("bad")))
        # the -D value is drawn: dense0 is [8] in one and [16] in the other
        shapes = sorted(next(t for t in text if t.startswith("dense [")) for d, text in drawn.items() if d.startswith("wide"))
        expect("each override drawn with its own shapes", shapes, ["dense [16]", "dense [8]"])
        expect("the deep design's layers", [t for t in drawn[next(d for d in drawn if d.startswith("deep"))] if t.startswith("dense")],
               ["dense0", "dense [8]", "dense1", "dense [8]", "dense2", "dense [1]"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test")
    ap.add_argument("--nnc", required=True)
    a = ap.parse_args()
    {"protocol": test_protocol, "corpus": test_corpus, "fmt_models": test_fmt_models,
     "draw_examples": test_draw_examples, "editors": test_editors,
     "compare_diagrams": test_compare_diagrams}[a.test](os.path.abspath(a.nnc))


if __name__ == "__main__":
    main()
