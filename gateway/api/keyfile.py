"""A file of ``name:secret`` lines (staff password hashes, NGSI platform tokens), re-read when it
changes so adding a line needs no restart, with a warning when others may read it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class KeyFile:
    def __init__(self, path: Path | None, what: str) -> None:
        self.path = path
        self.what = what  # for the log line, e.g. "staff users file"
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._entries: dict[str, str] = {}

    def entries(self) -> dict[str, str]:
        """name -> secret; empty when there is no file (or it cannot be read)."""
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
                        "secrets file is readable by others; chmod 600 it",
                        extra={"fields": {"file": str(self.path), "holds": self.what}},
                    )
                entries = {}
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    name, sep, secret = line.strip().partition(":")
                    if sep and not name.startswith("#"):
                        entries[name] = secret
                self._entries, self._mtime = entries, stat.st_mtime
            return self._entries
