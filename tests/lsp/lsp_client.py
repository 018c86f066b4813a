"""A minimal LSP client over a subprocess's stdin/stdout (Content-Length framing), for the tests
of `nnc lsp` and the bench (bench/lsp_bench.py)."""
import json
import subprocess
import time


class Client:
    def __init__(self, nnc, timeout=20):
        self.proc = subprocess.Popen([nnc, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.timeout = timeout
        self.next_id = 1
        self.pending = []  # notifications read while waiting for a response

    def send(self, message):
        body = json.dumps(message).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read(self):
        length = None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise EOFError("nnc lsp closed its output; stderr: %s" % self.proc.stderr.read().decode(errors="replace"))
            line = line.strip()
            if not line:
                break
            key, _, value = line.partition(b":")
            if key.lower() == b"content-length":
                length = int(value)
        assert length is not None, "a message without Content-Length"
        return json.loads(self.proc.stdout.read(length))

    def request(self, method, params):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        while True:
            m = self.read()
            if m.get("id") == rid and "method" not in m:
                return m
            self.pending.append(m)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def notification(self, method):
        """The next notification named METHOD (read from the pending ones first)."""
        for i, m in enumerate(self.pending):
            if m.get("method") == method:
                return self.pending.pop(i)
        while True:
            m = self.read()
            if m.get("method") == method:
                return m
            self.pending.append(m)

    def initialize(self):
        r = self.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
        self.notify("initialized", {})
        return r

    def open(self, uri, text, version=1):
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "nn", "version": version, "text": text}})
        return self.notification("textDocument/publishDiagnostics")

    def change(self, uri, text, version):
        self.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]})
        return self.notification("textDocument/publishDiagnostics")

    def at(self, method, uri, line, character, **extra):
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        params.update(extra)
        return self.request(method, params)

    def close(self):
        r = self.request("shutdown", None)
        self.notify("exit", None)
        status = self.proc.wait(timeout=self.timeout)
        return r, status
