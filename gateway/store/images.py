"""Camera images on disk, named by the SHA-256 of their bytes: a JPEG sent twice is stored once, a
file's name proves its content, and the database holds only the metadata."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ImageFiles:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if not SHA256.match(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / f"{sha256}.jpg"

    def save(self, sha256: str, jpeg: bytes) -> Path:
        """Write the file unless it is there already; atomic, so a reader never sees half."""
        path = self.path(sha256)
        if path.exists():
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(jpeg)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def remove(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)
