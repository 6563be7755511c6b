"""The driver's tablet: a page and a small JSON API served by the bus agent on the bus's own LAN.

A cheap Android tablet on the dashboard opens ``http://<bus>:8080/``. The page (``static/``)
keeps every entry in the browser's localStorage until the agent has taken it, so entries made
while the agent restarts are sent when it is back. Each entry carries an id made in the browser;
the agent takes an id once (its ids live in the bus state), so a resend after a lost answer is
harmless: exactly once, end to end, since the city also keys tablet entries on that id.

The standard library's HTTP server is enough for one tablet and keeps the field device free of a
web framework. ``token``, when set, must come with every API call (``X-Tablet-Token``): the page
learns it once from ``/?token=...`` and keeps it, so a phone that joins the bus Wi-Fi cannot post.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Protocol

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
MAX_ENTRIES = 500  # per request; a tablet offline for a whole day sends a few hundred
STATIC = {
    "/": ("tablet.html", "text/html; charset=utf-8"),
    "/tablet.js": ("tablet.js", "text/javascript; charset=utf-8"),
    "/tablet.css": ("tablet.css", "text/css; charset=utf-8"),
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class TabletBackend(Protocol):
    def tablet_state(self) -> dict[str, Any]: ...
    def tablet_entries(self, entries: list[dict[str, Any]]) -> list[str]: ...
    def tablet_stop(self, stop_id: str | None) -> None: ...


class TabletServer:
    def __init__(
        self,
        backend: TabletBackend,
        bind: str,
        port: int,
        token: str | None,
        count: Callable[[str], None],
    ) -> None:
        pages = {
            path: resources.files("edge.agents.bus").joinpath("static", name).read_bytes()
            for path, (name, _) in STATIC.items()
        }
        handler = type(
            "Handler",
            (_Handler,),
            {"backend": backend, "pages": pages, "token": token, "count": staticmethod(count)},
        )
        self.httpd = ThreadingHTTPServer((bind, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="tablet", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


class BadRequest(ValueError):
    """An API call the agent refuses; the text goes back to the page."""


class _Handler(BaseHTTPRequestHandler):
    backend: TabletBackend
    pages: dict[str, bytes]
    token: str | None
    count: Callable[[str], None]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("tablet: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            self._send(HTTPStatus.OK, self.pages[path], STATIC[path][1])
        elif path == "/api/state":
            if self._authorised():
                self._json(HTTPStatus.OK, self.backend.tablet_state())
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if not self._authorised():
            return
        try:
            body = self._body()
            if self.path == "/api/entries":
                entries = body.get("entries")
                if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
                    raise BadRequest(f"entries: expected a list of at most {MAX_ENTRIES}")
                self._json(HTTPStatus.OK, {"accepted": self.backend.tablet_entries(entries)})
            elif self.path == "/api/stop":
                stop = body.get("stop_id")
                if stop is not None and not isinstance(stop, str):
                    raise BadRequest("stop_id: expected a stop id or null")
                self.backend.tablet_stop(stop)
                self._json(HTTPStatus.OK, self.backend.tablet_state())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"no such API: {self.path}"})
        except BadRequest as exc:
            self.count("tablet_rejected")
            log.warning("tablet request rejected", extra={"fields": {"error": str(exc)}})
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def _authorised(self) -> bool:
        given = self.headers.get("X-Tablet-Token", "")
        if self.token is None or hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        self.count("tablet_unauthorised")
        self._json(HTTPStatus.UNAUTHORIZED, {"error": "this tablet is not paired (token)"})
        return False

    def _body(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        if not 0 < length <= MAX_BODY:
            raise BadRequest(f"body must be 1..{MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        return body

    def _json(self, status: HTTPStatus, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
