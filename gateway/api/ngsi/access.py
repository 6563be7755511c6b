"""Who may manage NGSI subscriptions: a platform with a bearer token from ``ngsi.tokens_file``
(one ``name:token`` line each, re-read when the file changes), or a logged-in member of staff.

A subscription makes the store send HTTP requests to a URL of the subscriber's choosing, and
lists those URLs and their headers, so anonymous callers may not create, read or delete them.
"""

from __future__ import annotations

import hmac
import logging
import threading
from pathlib import Path

from fastapi import Request

from gateway.api.context import Context, viewer
from gateway.api.ngsi.errors import NgsiError

log = logging.getLogger(__name__)
MIN_TOKEN_CHARS = 24


class TokenFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._tokens: dict[str, str] = {}

    def _current(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            stat = self.path.stat()
        except OSError:
            return {}
        with self._lock:
            if stat.st_mtime != self._mtime:
                if stat.st_mode & 0o077:
                    log.warning(
                        "NGSI tokens file is readable by others; chmod 600 it",
                        extra={"fields": {"file": str(self.path)}},
                    )
                tokens = {}
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    name, sep, token = line.strip().partition(":")
                    if sep and not name.startswith("#") and len(token) >= MIN_TOKEN_CHARS:
                        tokens[name] = token
                self._tokens, self._mtime = tokens, stat.st_mtime
            return self._tokens

    def holder(self, presented: str) -> str | None:
        """The name a token belongs to; every entry is compared, in constant time each."""
        found = None
        for name, token in self._current().items():
            if hmac.compare_digest(presented.encode(), token.encode()):
                found = name
        return found


def caller(request: Request, ctx: Context, tokens: TokenFile) -> str:
    """The platform or member of staff making the request, or an Unauthorized."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented:
        name = tokens.holder(presented.strip())
        if name is not None:
            return f"token:{name}"
    staff = viewer(request).staff
    if staff is not None:
        return f"staff:{staff}"
    raise NgsiError(
        "Unauthorized",
        "subscriptions need a platform token (Authorization: Bearer ...) or a staff login",
    )
