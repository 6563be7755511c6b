"""Who may manage NGSI subscriptions: a platform with a bearer token from ``ngsi.tokens_file``
(one ``name:token`` line each, re-read when the file changes), or a logged-in member of staff.

A subscription makes the store send HTTP requests to a URL of the subscriber's choosing, and
lists those URLs and their headers, so anonymous callers may not create, read or delete them.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from fastapi import Request

from gateway.api.context import Context, viewer
from gateway.api.keyfile import KeyFile
from gateway.api.ngsi.errors import NgsiError

MIN_TOKEN_CHARS = 24


class TokenFile:
    def __init__(self, path: Path | None) -> None:
        self._file = KeyFile(path, "NGSI tokens file")

    def holder(self, presented: str) -> str | None:
        """The name a token belongs to; every entry is compared, in constant time each, and
        tokens shorter than MIN_TOKEN_CHARS never match."""
        found = None
        for name, token in self._file.entries().items():
            long_enough = len(token) >= MIN_TOKEN_CHARS
            if hmac.compare_digest(presented.encode(), token.encode()) and long_enough:
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
