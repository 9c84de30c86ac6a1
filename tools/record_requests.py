"""Record what a real client sends to the emulator: a reverse proxy on loopback.

    python -m tools.record_requests --target http://127.0.0.1:8000 --port 8001 --out FILE

Point a client (the Azure CLI, an older azure-batch) at the proxy's port: each request is
forwarded to ``target`` unchanged and appended to ``FILE`` as one JSON line with its
method, path, query, JSON body and the answer's status and error code. Authorization and
every other header are left out (the fixtures must hold no key or signature); the replay
signs each request again (tests/emulator/test_recorded_clients.py).
"""

from __future__ import annotations

import argparse
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def _handler(target: str, out: Any, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Recorder(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            skip = {"host", "content-length", "connection", "accept-encoding"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            request = urllib.request.Request(
                target + self.path, data=body or None, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request) as answer:
                    status, answer_headers, content = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as refused:
                status, answer_headers, content = refused.code, refused.headers, refused.read()
            self._record(body, status, content)
            self.send_response(status)
            for name, value in answer_headers.items():
                if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        def _record(self, body: bytes, status: int, content: bytes) -> None:
            parts = urlsplit(self.path)
            code = None
            if status >= 400 and content:
                try:
                    code = json.loads(content).get("code")
                except ValueError:
                    code = None
            entry = {
                "method": self.command,
                "path": parts.path,
                "query": dict(parse_qsl(parts.query)),
                "body": json.loads(body) if body else None,
                "status": status,
                "code": code,
            }
            with lock:
                out.write(json.dumps(entry) + "\n")
                out.flush()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Recorder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="the emulator's URL")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True, help="the JSON-lines file to append to")
    args = parser.parse_args(argv)
    with open(args.out, "a", encoding="utf-8") as out:
        handler = _handler(args.target.rstrip("/"), out, threading.Lock())
        ThreadingHTTPServer(("127.0.0.1", args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
