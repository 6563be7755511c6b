"""A platform's notification endpoint for the tests: an HTTP server on loopback that records each
POST (headers and JSON body) and answers with the statuses it is told to, in order."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, answers: list[int] | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers = list(answers or [])
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    status = owner.answers.pop(0) if owner.answers else 200
                    if status == 200:
                        owner.received.append(
                            {"headers": dict(self.headers), "body": json.loads(body)}
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
