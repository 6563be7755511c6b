"""An agent's disk filling up: its outbox lives on a small tmpfs of its own, which a filler file
can fill to the last byte and free again. Needs root (mount)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path


class SmallDisk:
    def __init__(self, path: Path, size_mb: int = 4) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
            check=True,
            capture_output=True,
        )
        self.filler = path / "filler"

    def fill(self) -> None:
        """Write until the disk says no space is left (unbuffered: closing the file must not
        try to write a last buffer to the full disk)."""
        with open(self.filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
                os.fsync(out.fileno())

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def close(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
